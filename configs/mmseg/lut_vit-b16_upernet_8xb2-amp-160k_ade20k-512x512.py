# UperNet on a LUT-pre-trained ViT-B/16 for ADE20K, 512x512 crops, 160k iterations, 8 GPUs x 2 images.
# mmseg's MAE recipe, which is the paper's (Table E): AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05,
# layer-wise lr decay 0.65 over the 12 blocks, 1500 linear warm-up iterations then poly,
# drop path 0.1, single-scale training. Changed for LUT: the backbone (LUTMAE reads the
# pre-training checkpoint strictly, resizes pos_embed 14x14 -> 32x32 and keeps the final norm)
# and AMP, which the base config only names (its `fp16` key is not read by mmengine).
_base_ = "mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py"

custom_imports = dict(imports=["lut_plugin"], allow_failed_imports=False)

model = dict(
    # The one place for the pre-trained weights: the checkpoint the LUT pre-training run wrote,
    #   python tools/train.py configs/mmpretrain/lut_vitb_400e.py
    #   -> work_dirs/lut_vitb_400e/epoch_400.pth
    # (a file from tools/convert_checkpoint.py --to mmseg works as well).
    pretrained="work_dirs/lut_vitb_400e/epoch_400.pth",
    backbone=dict(
        type="LUTMAE",
        encoder="student",  # the online encoder, as in the paper; 'teacher' = momentum encoder
        final_norm=True,  # apply the pre-trained final LayerNorm to the last block's output
    ),
)

optim_wrapper = dict(type="AmpOptimWrapper", loss_scale="dynamic")
