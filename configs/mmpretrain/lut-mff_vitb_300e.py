# LUT(MFF) ViT-B/16 pre-training, ImageNet-1K, 224 px, 300 epochs, 8 GPUs x 512 images.
#
# mmpretrain's MFF (MAE whose encoder output fuses blocks 0, 2, 4, 6, 8 and 11; its optimiser,
# schedule and decoder unchanged) plus LUT's broader-context loss, w_bc = 0.25, as
# lut_vitb_400e.py adds it to MAE: LUT's two views (_base_/lut_pipeline.py; view 1 is MFF's
# own augmentation), disjoint masks from one noise, MIM on view 1, L_BC on the pooled fused
# latents against the momentum teacher (which encodes the full views with the fusion too).
_base_ = [
    'mmpretrain::mff/mff_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    './_base_/lut_pipeline.py',
    './_base_/lut_heads.py',
    '../_base_/reliability_runtime.py',  # crash-safe checkpoints, safe loading, exact resume
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

model = dict(
    type='LUT',
    backbone=dict(type='LUTMFFViT', arch='b', patch_size=16, mask_ratio=0.75),
    projector={{_base_.lut_projector}},
    predictor={{_base_.lut_predictor}},
    loss_bc=dict(type='BroaderContextLoss'),
    w_mim=1.0,
    w_bc=0.25,
    base_momentum=0.996,
    end_momentum=1.0)

# two views per image, no last partial batch (the heads' BatchNorm), as lut_vitb_400e.py
train_dataloader = dict(
    num_workers=12,
    pin_memory=True,
    drop_last=True,
    dataset=dict(pipeline={{_base_.lut_train_pipeline}}))
data_preprocessor = dict(non_blocking=True)
optim_wrapper = dict(
    constructor='SkipFrozenOptimWrapperConstructor',
    optimizer=dict(fused=True),
    paramwise_cfg=dict(norm_decay_mult=0.0))
custom_hooks = [dict(type='FiniteCheckHook')]
