# The whole ADE20K path on a CPU in about a minute: the tiny LUT ViT of
# configs/mmpretrain/lut_vit-tiny_toy_cpu.py (96-d, 4 blocks, 4 heads, 4-px patches, pre-trained
# on 32 px: its 8x8 position grid is resized to 16x16 here), 64-px crops, UperNet, on the
# ADE20K-layout toy dataset that the project generates (data/generated/toy_ade, made on first
# use by LUTToyADE20KDataset; label 0 = ignore after reduce_zero_label, 6 shape classes).
# Same recipe as the ViT-B config (AdamW, layer-wise lr decay 0.65, warm-up then poly) except:
# no AMP (OptimWrapper), BN instead of SyncBN, a few iterations, batch 2.
_base_ = './lut_vit-b16_upernet_8xb2-amp-160k_ade20k-512x512.py'

crop_size = (64, 64)
embed_dims = 96
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # The checkpoint written by the tiny pre-training run:
    #   python tools/train.py configs/mmpretrain/lut_vit-tiny_toy_cpu.py
    #   -> work_dirs/lut_vit-tiny_toy_cpu/epoch_50.pth
    pretrained='work_dirs/lut_vit-tiny_toy_cpu/epoch_50.pth',
    backbone=dict(
        img_size=crop_size,
        patch_size=4,
        embed_dims=embed_dims,
        num_layers=4,
        num_heads=4,
        out_indices=[0, 1, 2, 3],
    ),
    neck=dict(embed_dim=embed_dims, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=32, num_classes=6, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dims, channels=16, num_classes=6, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(43, 43)),
)

# data: the ADE20K pipelines at 1/8 scale
dataset_type = 'LUTToyADE20KDataset'
data_root = 'data/generated/toy_ade'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline),
)
test_dataloader = val_dataloader

# schedule: 8 iterations (2 warm-up, then poly), validation at the end
max_iters = 8
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(num_layers=4, layer_decay_rate=0.65),
    constructor='LayerDecayOptimizerConstructor',
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=2, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=2),
    checkpoint=dict(interval=max_iters),
)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
# a fixed seed, so that the walkthrough's numbers (docs/segmentation.md) repeat
randomness = dict(seed=0)
