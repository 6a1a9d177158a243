# Fine-tuning on the CPU: the tiny ViT of lut_vit-tiny_toy_cpu.py (32 px, patch 4, 96-d x 4
# blocks), initialised from that run's student encoder and fine-tuned on the embedded toy
# classification set (2000 train / 500 val images, 10 classes; generated on first use, nothing
# is downloaded). The recipe is lut_vitb_finetune_100e.py's (METHOD.md Table D: AdamW, layer
# decay 0.65, RandAugment, random erasing, Mixup/CutMix, label smoothing, drop path 0.1),
# shrunk to 32 px, batch 64 on one process and 50 epochs. The same config fine-tunes an MAE
# checkpoint (mae_vit-tiny_toy_cpu.py) unchanged.
#
#   python tools/train.py configs/mmpretrain/lut_vit-tiny_toy_cpu.py   # pre-train first
#   python tools/train.py configs/mmpretrain/lut_vit-tiny_finetune_toy_cpu.py
#   # another checkpoint: --cfg-options model.backbone.init_cfg.checkpoint=PATH
#   # random init:        --cfg-options model.backbone.init_cfg=None
_base_ = './lut_vitb_finetune_100e.py'

img_size = 32
embed_dims = 96
toy_data = dict(
    type='LUTToyShapesDataset',
    data_root='data/generated/toy_shapes',
    num_train=2000,
    num_val=500)

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=4,
            feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=4,
        init_cfg=dict(checkpoint='work_dirs/lut_vit-tiny_toy_cpu/epoch_50.pth')),
    head=dict(num_classes=10, in_channels=embed_dims))
data_preprocessor = dict(num_classes=10)

# The upstream pipelines at 32 px: the toy images are 64 px, so the validation view is the
# whole image resized (as in the k-NN and linear-probe evaluations).
train_pipeline = _base_.train_pipeline
train_pipeline[1]['scale'] = img_size  # RandomResizedCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1]['scale'] = img_size  # ResizeEdge
test_pipeline[2]['crop_size'] = img_size  # CenterCrop
train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True, split='train', pipeline=train_pipeline, **toy_data))
val_dataloader = dict(
    batch_size=100,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(_delete_=True, split='val', pipeline=test_pipeline, **toy_data))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# Table D's base lr (2.5e-4 per 256 images) x 32 for the short run on 2000 images: the best
# of 2.5e-4 to 4e-3 for LUT's encoders and as good as 1e-3 for MAE's
# (docs/results/lut_vs_mae_cpu.md); layer decay 0.65 as in Table D (0.85 was no better).
optim_wrapper = dict(optimizer=dict(lr=2.5e-4 * 64 / 256 * 32))
max_epochs = 50
param_scheduler = _base_.param_scheduler  # 5 warm-up epochs, then cosine to 1e-6
param_scheduler[1]['T_max'] = max_epochs - 5
param_scheduler[1]['end'] = max_epochs
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
auto_scale_lr = dict(base_batch_size=64)
