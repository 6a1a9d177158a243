# LUT ViT-B/16 pre-training on ImageNet-1K, 400 epochs, 8 GPUs x 512 = 4096 images per step.
# Upstream MAE recipe (AdamW (0.9, 0.95), wd 0.05, lr 1.5e-4 * 4096 / 256 = 2.4e-3, 40 warm-up
# epochs + cosine, mask ratio 0.75, norm_pix_loss, decoder 512-d x 8 x 16 heads, AMP) plus LUT's
# two views, projector/predictor, broader-context loss (w_bc 0.25) and momentum teacher.
_base_ = [
    'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
    './_base_/lut_pipeline.py',
    './_base_/lut_heads.py',
    '../_base_/reliability_runtime.py',  # crash-safe checkpoints, safe loading, exact resume
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

# model settings: the MAE encoder/decoder/head of the base, plus LUT's parts
model = dict(
    type='LUT',
    backbone=dict(type='LUTViT', arch='b', patch_size=16, mask_ratio=0.75),
    projector={{_base_.lut_projector}},
    predictor={{_base_.lut_predictor}},
    loss_bc=dict(type='BroaderContextLoss'),
    w_mim=1.0,
    w_bc=0.25,
    base_momentum=0.996,
    end_momentum=1.0)

# data: two views of each image, the second one colour-distorted (see _base_/lut_pipeline.py);
# no last partial batch (as the reference): a batch of 1 cannot pass the heads' BatchNorm.
# Two views cost a worker about 1.5 x MAE's one (docs/results/speed.md): 12 workers per GPU
# instead of the base's 8 (an 8-GPU node with 112 cores); pinned batches copied to the GPU
# without blocking the host.
train_dataloader = dict(
    num_workers=12,
    pin_memory=True,
    drop_last=True,
    dataset=dict(pipeline={{_base_.lut_train_pipeline}}))
data_preprocessor = dict(non_blocking=True)

# fused AdamW (one kernel per step; also runs on CPUs); no weight decay on any norm layer:
# the projector/predictor BatchNorms too (the base config only lists 'ln', 'bias',
# 'pos_embed', 'mask_token' and 'cls_token')
optim_wrapper = dict(
    # mmengine's default constructor, naming the frozen teacher once instead of warning
    # about each of its tensors
    constructor='SkipFrozenOptimWrapperConstructor',
    optimizer=dict(fused=True),
    paramwise_cfg=dict(norm_decay_mult=0.0))

# stop at a NaN/inf loss or weight before a checkpoint holds it, without a per-step sync
custom_hooks = [dict(type='FiniteCheckHook')]
