# Table C: LUT ViT-B/16 pre-trained for 100 epochs (w_mim 1, w_bc 0.25).
# lut_vitb_400e.py with a 100-epoch schedule. The 40 warm-up epochs of the pre-training
# recipe (METHOD.md) are kept (choice: the paper gives no separate warm-up for 100 epochs),
# then cosine to 0 over the remaining 60. The teacher momentum runs 0.996 -> 1 over these
# 100 epochs (the teacher update reads the run's max_iters).
_base_ = './lut_vitb_400e.py'

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
