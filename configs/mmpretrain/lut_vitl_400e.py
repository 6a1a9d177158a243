# LUT ViT-L/16 (1024-d, 24 blocks, 16 heads), 400 epochs; recipe as lut_vitb_400e.py
# (upstream MAE ViT-L 400e differs from ViT-B only in the encoder width/depth).
_base_ = './lut_vitb_400e.py'

model = dict(
    backbone=dict(arch='l'),
    neck=dict(embed_dim=1024),
    projector=dict(in_channels=1024),
    predictor=dict(in_channels=1024))
