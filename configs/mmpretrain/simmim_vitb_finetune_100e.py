# ImageNet-1K fine-tuning of a SimMIM or LUT(SimMIM) ViT-B/16 (supplementary Table A).
#
# The supplementary (B.1) fine-tunes both Table A rows "following the fine-tuning recipe of
# SimMIM", i.e. microsoft/SimMIM configs/vit_base__800ep/simmim_finetune__vit_base__img224__800ep.yaml
# on top of SimMIM's config.py defaults (8 GPUs x 128 = 1024 images per step). SimMIM scales
# every lr by batch / 512. Against the ViT-B MAE benchmark inherited through
# lut_vitb_finetune_100e.py:
#   lr 1.25e-3 per 512 images -> 2.5e-3 ................ (MAE/Table D: 2.5e-4 per 256; overridden)
#   layer-wise lr decay 0.65, AdamW (0.9, 0.999), eps 1e-8, wd 0.05, 100 epochs .... same
#   20 warm-up epochs from 2.5e-7 per 512 (5e-7) ........ (MAE: 5 epochs; overridden)
#   cosine down to 2.5e-7 per 512 (5e-7) ................ (MAE: 1e-6; overridden)
#   grad-norm clipping at 5 ............................. (MAE: none; overridden)
#   RandAug rand-m9-mstd0.5-inc1, random erasing 0.25, Mixup 0.8, CutMix 1.0, label smoothing
#   0.1, drop path 0.1, 224 px bicubic crops, 256/224 centre-crop test ............. same
# Schedule shape: SimMIM's timm CosineLRScheduler runs one cosine over all 100 epochs and
# replaces its first 20 by the linear warm-up (so the lr drops to 0.9 x peak after the
# warm-up); like mmpretrain's own SimMIM fine-tuning benchmarks
# (mmpretrain::simmim/benchmarks/swin-base-w7_8xb256-coslr-100e_in1k.py: the same 20-epoch
# warm-up from 2.5e-7 per 512 and cosine to 2.5e-7 per 512), the cosine here starts after the
# warm-up. Those benchmarks are Swin models, so this config inherits the ViT-B MAE benchmark
# (same data pipeline as SimMIM's ViT recipe) and sets SimMIM's optimiser and schedule.
#
# The encoder is SimMIM's ViT as fine-tuned by SimMIM: BEiTViT with a relative position bias
# per block (each block starts from the pre-trained shared table), layer scale, mean-pooled
# patch tokens + a new fc norm (ln2); the pre-trained final norm and mask token are unused.
# Weight decay as SimMIM's fine-tuning optimiser: none on 1-D parameters (biases, norms, q/v
# biases, layer scales) and the cls token; the relative position bias tables decay like every
# other weight (SimMIM's ViT exempts only pos_embed/cls_token; the inherited MAE benchmark's
# exemption of relative position bias tables is dropped).
# SimMIM baseline checkpoint:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/simmim_vitb_100e/epoch_100.pth
# LUT(SimMIM) teacher instead of the student: model.backbone.init_cfg.prefix=teacher.backbone.
_base_ = './lut_vitb_finetune_100e.py'

# SimMIM's lrs are per 512 images; 8 GPUs x 128 (the inherited batch) = 1024.
simmim_batch = 8 * 128
simmim_lr = 1.25e-3 * simmim_batch / 512
simmim_min_lr = 2.5e-7 * simmim_batch / 512

model = dict(
    backbone=dict(
        _delete_=True,
        type='BEiTViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        use_abs_pos_emb=False,
        use_rel_pos_bias=True,
        use_shared_rel_pos_bias=False,
        layer_scale_init_value=0.1,
        init_cfg=dict(
            type='Pretrained', _scope_='lut_plugin', allow_missing=['ln2.*', '*.relative_position_index'], allow_unused=['ln1.*', 'mask_token'],
            checkpoint='work_dirs/lut-simmim_vitb_100e/epoch_100.pth',
            prefix='backbone.')))

optim_wrapper = dict(
    optimizer=dict(lr=simmim_lr),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        _delete_=True,
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,  # biases, norms, q/v biases, layer scales
        custom_keys={'.cls_token': dict(decay_mult=0.0)}))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=simmim_min_lr / simmim_lr,
        by_epoch=True,
        begin=0,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=80,
        eta_min=simmim_min_lr,
        by_epoch=True,
        begin=20,
        end=100,
        convert_to_iter_based=True)
]

train_cfg = dict(by_epoch=True, max_epochs=100)
