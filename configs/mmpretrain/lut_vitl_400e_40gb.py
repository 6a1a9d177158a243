# LUT ViT-L/16, 400 epochs, for 40 GB GPUs: 8 GPUs x 128 images x 4 accumulated data
# iterations = 4096 images per optimiser step; see lut_vitb_400e_40gb.py (the same layout)
# and lut_vitl_400e.py (the model). GPU memory: the table in README.md next to this file.
_base_ = './lut_vitl_400e.py'

train_dataloader = dict(batch_size=128)
optim_wrapper = dict(accumulative_counts=4)
auto_scale_lr = dict(base_batch_size=1024)  # 4096 / 4: see lut_vitb_400e_40gb.py
