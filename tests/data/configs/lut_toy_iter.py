# The toy LUT config with an iteration-based loop, mmseg-style InfiniteSampler and, like mmseg's
# and the SimMIM configs, no fixed seed (checkpoints every 2 iterations; 6 iterations in all).
_base_ = "../../../configs/mmpretrain/lut_vit-tiny_toy_cpu.py"

train_dataloader = dict(sampler=dict(type="InfiniteSampler", shuffle=True))
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=6)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type="CosineAnnealingLR", T_max=4, by_epoch=False, begin=2, end=6),
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2, max_keep_ckpts=5)
)
log_processor = dict(by_epoch=False)
randomness = dict(_delete_=True, seed=None)
