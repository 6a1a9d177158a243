# ImageNet-1K fine-tuning of ViT-L/16 from a LUT pre-training checkpoint (METHOD.md Table D).
#
# Inherits mmpretrain's MAE ViT-L fine-tuning benchmark. Its values, checked against Table D:
#   AdamW betas (0.9, 0.999), wd 0.05, batch 8 x 128 = 1024 ..... same
#   lr 4e-3 (= 1e-3 x 1024 / 256) ................................ same
#   layer-wise lr decay 0.75 ..................................... Table D: 0.65 (overridden)
#   drop path 0.2 ................................................ Table D: 0.1 (overridden)
#   5 warm-up epochs then cosine to 1e-6, 50 epochs .............. same
#   RandAug(9, 0.5), label smoothing 0.1, Mixup 0.8, CutMix 1.0 .. same
#   (kept from MAE: random erasing 0.25, average-pooled patch tokens + fc norm)
# Teacher weights instead of the student: model.backbone.init_cfg.prefix=teacher.backbone.
_base_ = [
    'mmpretrain::mae/benchmarks/vit-large-p16_8xb128-coslr-50e_in1k.py',
    '../_base_/reliability_runtime.py',
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', _scope_='lut_plugin', allow_missing=['ln2.*'], allow_unused=['ln1.*'],
            checkpoint='work_dirs/lut_vitl_400e/epoch_400.pth',
            prefix='backbone.')))

optim_wrapper = dict(
    optimizer=dict(lr=1e-3 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.65))
