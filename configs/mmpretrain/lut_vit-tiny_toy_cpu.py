# LUT on the CPU: a tiny ViT (32 px, patch 4, 96-d x 4 blocks) pre-trained on the embedded
# toy-shapes dataset (2000 train / 500 val images, 10 classes), which is generated under
# data/generated/ on first use (nothing is downloaded). Same algorithm, pipeline, teacher and
# schedule shape as lut_vitb_400e.py; sizes, the optimiser wrapper (no AMP), the learning
# rate and the loop length change, and a k-NN monitor reports the quality of the frozen
# features on the labelled toy splits while it trains (docs/evaluation.md).
# mae_vit-tiny_toy_cpu.py is its MAE baseline; tools/analysis/compare_lut_mae.py runs both.
#
#   python tools/train.py configs/mmpretrain/lut_vit-tiny_toy_cpu.py
_base_ = './lut_vitb_400e.py'

from lut_plugin.datasets import lut_view_pipelines

img_size = 32
patch_size = 4
embed_dims = 96
num_patches = (img_size // patch_size)**2

model = dict(
    backbone=dict(
        _delete_=True,
        type='LUTViT',
        arch=dict(
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=4,
            feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=patch_size,
        mask_ratio=0.75),
    neck=dict(
        num_patches=num_patches,
        patch_size=patch_size,
        embed_dim=embed_dims,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=4),
    head=dict(patch_size=patch_size),
    # heads 1024 wide: ~10 x D as the paper's ViT-S heads (4096 for 384-d); 256 (2.7 x D)
    # shrank the pooled features' effective rank (docs/results/lut_vs_mae_cpu.md)
    projector=dict(in_channels=embed_dims, hid_channels=1024, norm='bn'),
    predictor=dict(in_channels=embed_dims, hid_channels=1024, norm='bn'))

view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(img_size)
train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    pin_memory=False,  # nothing to pin for on the CPU
    dataset=dict(
        _delete_=True,
        type='LUTToyShapesDataset',
        data_root='data/generated/toy_shapes',
        split='train',
        num_train=2000,
        num_val=500,
        pipeline=lut_train_pipeline))

# CPU: plain fp32 optimiser wrapper; lr scaled as in MAE (1.5e-4 * batch / 256) x 20 for the
# short run (x 4 left every encoder at its random-init k-NN accuracy after 20 epochs;
# docs/results/lut_vs_mae_cpu.md).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='SkipFrozenOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1.5e-4 * 64 / 256 * 20, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))

max_epochs = 50
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=3,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 3,
        by_epoch=True,
        begin=3,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# The non-finite guard of the base config, and the k-NN accuracy of the frozen student and
# teacher on the labelled toy splits (train = bank, val = queries) before training and every
# 5 epochs.
custom_hooks = [
    dict(type='FiniteCheckHook'),
    dict(type='LUTKNNMonitorHook', interval=5, encoders=('student', 'teacher')),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
# CPU processes (tools/dist_train.sh CONFIG 2): gloo, and DDP without a GPU's device_ids
env_cfg = dict(dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
randomness = dict(seed=0, diff_rank_seed=True)
resume = False
auto_scale_lr = dict(base_batch_size=64)
