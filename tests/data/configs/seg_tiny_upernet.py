# Tiny UperNet + mmseg's MAE backbone for the launcher tests: 32 px, patch 4, 32-d x 4
# blocks, 2 iterations. Inherits the upstream ADE20K MAE config (SyncBN, slide test,
# layer-wise lr decay) and only shrinks it. Give the dataset folder with
# --cfg-options {train,val,test}_dataloader.dataset.data_root=DIR.
_base_ = [
    "mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py",
    "../../../configs/_base_/reliability_runtime.py",
]

crop_size = (32, 32)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        img_size=crop_size,
        patch_size=4,
        embed_dims=32,
        num_layers=4,
        num_heads=2,
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.0,
    ),
    neck=dict(embed_dim=32, rescales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=16, pool_scales=(1, 2)),
    auxiliary_head=dict(in_channels=32, channels=16),
    test_cfg=dict(_delete_=True, mode="whole"),
)

optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="RandomResize", scale=(64, 32), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(64, 32), keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root="data/tiny_ade", pipeline=train_pipeline),
)
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root="data/tiny_ade", pipeline=test_pipeline),
)
test_dataloader = val_dataloader

train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
randomness = dict(seed=0, deterministic=True)
