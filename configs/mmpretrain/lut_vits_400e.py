# LUT ViT-S/16 (DeiT-S: 384-d, 12 blocks, 6 heads), 400 epochs; recipe as lut_vitb_400e.py.
# Note: mmpretrain's arch 's' is a different model (768-d x 8 blocks); 'deit-s' is ViT-S.
_base_ = './lut_vitb_400e.py'

model = dict(
    backbone=dict(arch='deit-s'),
    neck=dict(embed_dim=384),
    projector=dict(in_channels=384),
    predictor=dict(in_channels=384))
