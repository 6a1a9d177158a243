# UperNet on a LUT-pre-trained ViT-S/16 (DeiT-S sizes: 384-d, 12 blocks, 6 heads) for ADE20K;
# recipe as the ViT-B config (layer-wise lr decay 0.65 over 12 blocks). The decode head keeps the
# 512 channels of mmseg's upernet_mae base model (B uses 768 = its width).
_base_ = './lut_vit-b16_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    # python tools/train.py configs/mmpretrain/lut_vits_400e.py -> work_dirs/lut_vits_400e/epoch_400.pth
    pretrained='work_dirs/lut_vits_400e/epoch_400.pth',
    backbone=dict(embed_dims=384, num_layers=12, num_heads=6, out_indices=[3, 5, 7, 11]),
    neck=dict(embed_dim=384),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=512),
    auxiliary_head=dict(in_channels=384),
)

optim_wrapper = dict(paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.65))
