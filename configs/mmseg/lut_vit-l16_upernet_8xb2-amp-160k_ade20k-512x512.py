# UperNet on a LUT-pre-trained ViT-L/16 (1024-d, 24 blocks, 16 heads) for ADE20K; recipe as the
# ViT-B config, layer-wise lr decay 0.65 over the 24 blocks, features of blocks 8/12/16/24.
_base_ = './lut_vit-b16_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    # python tools/train.py configs/mmpretrain/lut_vitl_400e.py -> work_dirs/lut_vitl_400e/epoch_400.pth
    pretrained='work_dirs/lut_vitl_400e/epoch_400.pth',
    backbone=dict(embed_dims=1024, num_layers=24, num_heads=16, out_indices=[7, 11, 15, 23]),
    neck=dict(embed_dim=1024),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024], channels=1024),
    auxiliary_head=dict(in_channels=1024),
)

optim_wrapper = dict(paramwise_cfg=dict(num_layers=24, layer_decay_rate=0.65))
