# ImageNet-1K linear probing of a LUT ViT-B/16 (Table B's linear-probe column).
#
# mmpretrain's MAE linear protocol, unchanged: frozen encoder (all 12 blocks, patch embedding,
# cls/position tokens and the final norm), the cls token after the final norm ->
# BatchNorm without affine (ClsBatchNormNeck) -> linear classifier; LARS lr 6.4 at batch
# 8 x 2048 = 16384, no weight decay, 10 warm-up epochs then cosine, 90 epochs, RandomResizedCrop
# + flip only. Every tensor of the encoder, the final norm included, comes from the checkpoint.
# Teacher weights instead of the student: model.backbone.init_cfg.prefix=teacher.backbone.
# Table B checkpoints: --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/lut_vitb_400e_wbc0.1/epoch_400.pth
_base_ = [
    'mmpretrain::mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py',
    '../_base_/reliability_runtime.py',
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', _scope_='lut_plugin',
            checkpoint='work_dirs/lut_vitb_400e/epoch_400.pth',
            prefix='backbone.')))
