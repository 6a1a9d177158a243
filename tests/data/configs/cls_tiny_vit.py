# Tiny ViT classifier for the launcher tests: inherits mmpretrain's MAE fine-tuning
# config (layer-wise lr decay, val/test dataloaders with an mmpretrain:: collate_fn)
# and shrinks it to 32 px, patch 4, 32-d x 1 block, 2 classes, one epoch.
# Give the folder (one sub-folder per class) with --cfg-options
# {train,val,test}_dataloader.dataset.data_root=DIR.
_base_ = [
    "mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py",
    "../../../configs/_base_/reliability_runtime.py",
]

data_preprocessor = dict(num_classes=2)
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
        img_size=32,
        patch_size=4,
        drop_path_rate=0.0,
        init_cfg=None,
    ),
    head=dict(num_classes=2, in_channels=32),
    train_cfg=dict(augments=None),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackInputs"),
]
test_pipeline = [dict(type="LoadImageFromFile"), dict(type="PackInputs")]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(
        _delete_=True, type="CustomDataset", data_root="data/tiny_cls", pipeline=train_pipeline
    ),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(
        _delete_=True, type="CustomDataset", data_root="data/tiny_cls", pipeline=test_pipeline
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="Accuracy", topk=(1,))
test_evaluator = val_evaluator

optim_wrapper = dict(paramwise_cfg=dict(num_layers=1))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
