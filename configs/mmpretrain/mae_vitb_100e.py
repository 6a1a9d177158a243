# Table C baseline: mmpretrain's MAE ViT-B/16 pre-trained for 100 epochs.
# The upstream 400-epoch recipe (AdamW (0.9, 0.95), wd 0.05, lr 1.5e-4 x 4096 / 256, mask
# ratio 0.75, norm_pix_loss, decoder 512-d x 8, RandomResizedCrop(0.2, 1) + flip, AMP) with
# the same 100-epoch schedule as lut_vitb_100e.py (40 warm-up epochs, cosine over 60), and the
# same data loader and optimiser settings (drop_last, fused AdamW).
# Fine-tune with lut_vitb_finetune_100e.py (its checkpoint keys are the same `backbone.*`).
_base_ = [
    'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
    '../_base_/reliability_runtime.py',
]

# the reliability runtime's runner and hooks are lut_plugin's
custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=40,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=60,
        by_epoch=True,
        begin=40,
        end=100,
        convert_to_iter_based=True)
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)

# as lut_vitb_100e.py: no last partial batch (as the reference MAE code), fused AdamW
train_dataloader = dict(drop_last=True)
optim_wrapper = dict(optimizer=dict(fused=True))
