# ImageNet-1K fine-tuning of ViT-B/16 from a LUT pre-training checkpoint (METHOD.md Table D).
#
# Inherits mmpretrain's MAE fine-tuning benchmark. Its values, checked against Table D:
#   AdamW betas (0.9, 0.999), wd 0.05 .......................... same
#   batch 8 GPUs x 128 = 1024 .................................. same
#   lr 2e-3 (MAE's blr 5e-4 x 1024 / 256) ....................... Table D: 2.5e-4 x 1024 / 256 = 1e-3 (overridden)
#   layer-wise lr decay 0.65 ................................... same
#   5 warm-up epochs (linear) then cosine to 1e-6, 100 epochs .. same
#   RandAugment timm 'rand-m9-mstd0.5-inc1' (9, 0.5) ........... same
#   label smoothing 0.1, Mixup 0.8, CutMix 1.0 ................. same
#   drop path 0.1, 224 px ...................................... same
#   (not in Table D, kept from MAE: random erasing 0.25, average-pooled patch tokens + fc norm)
#
# Weights: the student encoder (`backbone.*`) of a LUT checkpoint. The fine-tuned model has
# no final norm (MAE's global-pool recipe): the checkpoint's `backbone.ln1.*` is unused and
# the new `ln2` (fc norm) starts at 1/0. To fine-tune the momentum teacher's encoder instead:
#   --cfg-options model.backbone.init_cfg.prefix=teacher.backbone.
# Another checkpoint:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/lut_vitb_800e/epoch_800.pth
_base_ = [
    'mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py',
    '../_base_/reliability_runtime.py',
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', _scope_='lut_plugin', allow_missing=['ln2.*'], allow_unused=['ln1.*'],
            checkpoint='work_dirs/lut_vitb_400e/epoch_400.pth',
            prefix='backbone.')))

optim_wrapper = dict(
    optimizer=dict(lr=2.5e-4 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.65))
