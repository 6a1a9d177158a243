# Tiny upstream MAE (mmpretrain's own model) for the launcher tests: 32 px, patch 4,
# a 32-d x 1-block ViT, 8 images -> 2 iterations per epoch. Inherits the upstream
# config unchanged otherwise (AmpOptimWrapper: run it with --cpu; `resume = True`,
# mmpretrain:: scope), with the reliability runtime.
# Give the image folder with --cfg-options train_dataloader.dataset.data_root=DIR.
_base_ = [
    "mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py",
    "../../../configs/_base_/reliability_runtime.py",
]

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
        img_size=32,
        patch_size=4,
    ),
    neck=dict(
        num_patches=64,
        patch_size=4,
        embed_dim=32,
        decoder_embed_dim=32,
        decoder_depth=1,
        decoder_num_heads=2,
    ),
    head=dict(patch_size=4),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(
        type="RandomResizedCrop",
        scale=32,
        crop_ratio_range=(0.2, 1.0),
        backend="pillow",
        interpolation="bicubic",
    ),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackInputs"),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type="CustomDataset",
        data_root="data/tiny_images",
        with_label=False,
        pipeline=train_pipeline,
    ),
)

# A schedule that does not depend on max_epochs, so that a 2-epoch run resumed to 3
# epochs and a 3-epoch run follow the same learning rates.
param_scheduler = [
    dict(
        type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True
    ),
    dict(
        type="CosineAnnealingLR", T_max=4, by_epoch=True, begin=1, end=5, convert_to_iter_based=True
    ),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=2)
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=1),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=3),
)
randomness = dict(seed=0, diff_rank_seed=True, deterministic=True)
