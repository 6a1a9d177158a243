# ImageNet-1K fine-tuning of ViT-S/16 from a LUT pre-training checkpoint (METHOD.md Table D).
#
# Derived from the ViT-B recipe (mmpretrain has no MAE ViT-S benchmark). Against Table D:
#   encoder: DeiT-S, 384-d x 12 blocks x 6 heads (mmpretrain arch 'deit-s'; arch 's' is
#            768-d x 8 blocks, not ViT-S)
#   lr 5e-4 x 1024 / 256 = 2e-3, layer-wise decay 0.75, 300 epochs (5 warm-up + cosine);
#   everything else (AdamW (0.9, 0.999), wd 0.05, batch 1024, RandAug(9, 0.5), label
#   smoothing 0.1, Mixup 0.8, CutMix 1.0, drop path 0.1, 224 px) as lut_vitb_finetune_100e.py.
# Teacher weights instead of the student: model.backbone.init_cfg.prefix=teacher.backbone.
_base_ = './lut_vitb_finetune_100e.py'

model = dict(
    backbone=dict(
        arch='deit-s',
        init_cfg=dict(checkpoint='work_dirs/lut_vits_400e/epoch_400.pth')),
    head=dict(in_channels=384))

optim_wrapper = dict(
    optimizer=dict(lr=5e-4 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.75))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=295,
        by_epoch=True,
        begin=5,
        end=300,
        eta_min=1e-6,
        convert_to_iter_based=True)
]

train_cfg = dict(by_epoch=True, max_epochs=300)
