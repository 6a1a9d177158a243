# ImageNet-1K linear probing of a LUT ViT-B/16 on the mean of its patch tokens.
#
# lut_vitb_linear_90e.py (mmpretrain's MAE protocol: LARS lr 6.4 at batch 16384, 90 epochs,
# RandomResizedCrop + flip) with one change: the probe reads the mean of the encoder's patch
# tokens after the final norm -- the feature LUT's broader-context loss trains (METHOD.md
# step 5: the mean of the patch tokens, cls excluded) -- instead of the cls token:
#   frozen encoder (final norm included) -> mean over the 14x14 patch tokens
#   (GlobalAveragePooling on the token map) -> BatchNorm without affine (ClsBatchNormNeck)
#   -> linear classifier.
# Which token the paper's linear-probe numbers (Table B) read is not stated in the paper or its
# supplementary, and the authors' public code has no linear-probing script. MAE's linear
# probing reads the cls token by default (its main_linprobe.py: global_pool=False), and so does
# mmpretrain's MAE benchmark, so lut_vitb_linear_90e.py stays the default.
# Not MAE's --global_pool probe either: that one drops the final norm and puts a new, frozen
# LayerNorm (fc_norm, weight 1, bias 0) on the pooled tokens.
_base_ = './lut_vitb_linear_90e.py'

model = dict(
    backbone=dict(out_type='featmap'),
    neck=[
        dict(type='GlobalAveragePooling'),
        dict(type='ClsBatchNormNeck', input_features=768),
    ])
