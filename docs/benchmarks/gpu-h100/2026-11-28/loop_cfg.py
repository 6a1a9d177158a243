_base_ = "/work/main/configs/mmpretrain/lut_vitb_400e.py"
train_dataloader = dict(
    batch_size=512,
    dataset=dict(
        _delete_=True,
        type="RepeatDataset",
        times=320,
        dataset=dict(
            type="CustomDataset",
            data_root="/root/out/checks/jpegs",
            with_label=False,
            pipeline={{_base_.lut_train_pipeline}},
        ),
    ),
)
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1000, save_last=False))
