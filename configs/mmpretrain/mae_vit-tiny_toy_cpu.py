# MAE on the CPU, the baseline of lut_vit-tiny_toy_cpu.py: mmpretrain's own MAE algorithm with
# the same encoder, decoder, reconstruction head, data, optimiser, schedule, epochs and k-NN
# monitor. It sees LUT's first view (short-side resize, 4 px reflect-padded random crop,
# flip), as LUT's reconstruction loss does.
#
#   python tools/train.py configs/mmpretrain/mae_vit-tiny_toy_cpu.py
_base_ = './lut_vit-tiny_toy_cpu.py'

from lut_plugin.datasets import lut_view_pipelines

view_pipeline1, _, lut_train_pipeline = lut_view_pipelines(32)

model = dict(
    _delete_=True,
    type='MAE',
    backbone=dict(_base_.model.backbone, type='MAEViT'),
    neck=_base_.model.neck,
    head=_base_.model.head,
    init_cfg=_base_.model.init_cfg)

train_dataloader = dict(
    dataset=dict(pipeline=[
        *lut_train_pipeline[:2],  # LoadImageFromFile, LUTResizeEdge
        *view_pipeline1,
        dict(type='PackInputs')
    ]))

custom_hooks = [
    dict(type='FiniteCheckHook'),
    dict(type='LUTKNNMonitorHook', interval=5),
]
