# LUT ViT-S/16, 400 epochs, for 40 GB GPUs: 8 GPUs x 256 images x 2 accumulated data
# iterations = 4096 images per optimiser step; see lut_vitb_400e_40gb.py (accumulation and
# schedules) and lut_vits_400e.py (the model). GPU memory: the table in README.md next to this file.
_base_ = './lut_vits_400e.py'

train_dataloader = dict(batch_size=256)
optim_wrapper = dict(accumulative_counts=2)
auto_scale_lr = dict(base_batch_size=2048)  # 4096 / 2: see lut_vitb_400e_40gb.py
