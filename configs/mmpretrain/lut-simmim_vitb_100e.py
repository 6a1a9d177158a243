# LUT(SimMIM) ViT-B/16 pre-training, ImageNet-1K, 224 px, 100 epochs (Table A).
#
# simmim_vitb_100e.py (encoder, linear decoder, L1 loss on masked pixels, optimiser and
# schedule unchanged) plus LUT's broader-context loss, w_bc = 0.25:
#   views:   LUT's two views (METHOD.md step 1: short side 224, 224 crop with 4 px reflect
#            padding, flip; view 2 also colour-distorted), from _base_/lut_pipeline.py;
#   masks:   drawn in the model from one noise over the 7x7 grid of 32 px blocks: view 1
#            gets SimMIM's mask (30 of 49 blocks masked), view 2 keeps 19 other blocks
#            (visible sets disjoint; mask_ratio must be >= 0.5). No SimMIMMaskGenerator.
#   MIM:     view 1 only; L_BC: each view's encoder outputs averaged over its unmasked
#            positions -> projector -> predictor, against the momentum teacher's projection
#            of the other full view (all positions pooled);
#   teacher: EMA of encoder + projector, 0.996 -> 1 (cosine), after every optimiser step.
_base_ = [
    './simmim_vitb_100e.py', './_base_/lut_pipeline.py', './_base_/lut_heads.py'
]

model = dict(
    type='LUTSimMIM',
    projector={{_base_.lut_projector}},
    predictor={{_base_.lut_predictor}},
    loss_bc=dict(type='BroaderContextLoss'),
    w_mim=1.0,
    w_bc=0.25,
    base_momentum=0.996,
    end_momentum=1.0)

# drop_last: the heads' BatchNorm needs more than one image per batch (as the reference);
# workers, pinned batches and the non-blocking copy as lut_vitb_400e.py (two views per image)
train_dataloader = dict(
    num_workers=12,
    pin_memory=True,
    drop_last=True,
    dataset=dict(pipeline={{_base_.lut_train_pipeline}}))
data_preprocessor = dict(non_blocking=True)
# the frozen teacher named once, not one warning per tensor (as lut_vitb_400e.py)
optim_wrapper = dict(constructor='SkipFrozenOptimWrapperConstructor')

# stop at a NaN/inf loss or weight before a checkpoint holds it, without a per-step sync
custom_hooks = [dict(type='FiniteCheckHook')]

