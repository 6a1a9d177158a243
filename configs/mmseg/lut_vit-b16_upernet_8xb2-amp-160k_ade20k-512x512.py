# UperNet on a LUT-pre-trained ViT-B/16 for ADE20K, 512x512 crops, 160k iterations, 8 GPUs x 2 images.
# mmseg's MAE recipe, which is the paper's (Table E): AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05,
# layer-wise lr decay 0.65 over the 12 blocks, 1500 linear warm-up iterations then poly,
# drop path 0.1, no final norm on the backbone features. Data as mmseg's ADE20K base: random
# rescaling (ratio 0.5-2.0 of 2048x512) -> 512x512 crop -> flip -> photometric distortion for
# training; one scale (2048x512, sliding 512 windows) for testing, no multi-scale / flip test.
# (Table E's "no multi-scale training" is read as no multi-scale schedule beyond this standard
# random-resize jitter, which MAE's and BEiT's ADE20K recipes also use.)
# Changed for LUT: the backbone (LUTMAE reads the pre-training checkpoint strictly and resizes
# pos_embed 14x14 -> 32x32) and AMP, which the base config only names (its `fp16` key is not
# read by mmengine).
_base_ = [
    'mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py',
    '../_base_/reliability_runtime.py',
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

model = dict(
    # The one place for the pre-trained weights: the checkpoint the LUT pre-training run wrote,
    #   python tools/train.py configs/mmpretrain/lut_vitb_400e.py
    #   -> work_dirs/lut_vitb_400e/epoch_400.pth
    # (a file from tools/convert_checkpoint.py --to mmseg works as well).
    pretrained='work_dirs/lut_vitb_400e/epoch_400.pth',
    backbone=dict(
        type='LUTMAE',
        encoder='student',  # the online encoder, as in the paper; 'teacher' = momentum encoder
        # mmseg's MAE recipe: the four UperNet inputs are raw block outputs; the pre-trained
        # final LayerNorm (ln1) is not loaded (the loader logs the skip). final_norm=True
        # would apply it to the last block's output instead.
        final_norm=False,
    ),
)

optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
