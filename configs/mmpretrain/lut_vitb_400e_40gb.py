# LUT ViT-B/16, 400 epochs, for 40 GB GPUs: 8 GPUs x 128 images x 4 accumulated data
# iterations = 4096 images per optimiser step, as the authors trained (batch 128, accum_iter 4).
# Everything else as lut_vitb_400e.py. The schedules stay the same functions of training
# progress: the lr schedule is converted to data iterations (4x as many per epoch) and the
# teacher's momentum is indexed by the data iteration over max_iters; the teacher is updated
# once per optimiser step. The heads' SyncBN normalises 8 x 128 images per micro-batch.
# GPU memory: the table in README.md next to this file.
_base_ = './lut_vitb_400e.py'

train_dataloader = dict(batch_size=128)
optim_wrapper = dict(accumulative_counts=4)
# --auto-scale-lr: mmengine counts GPUs x batch_size per data iteration and ignores the
# accumulation, so the base is 4096 / 4 (8 x 128 -> lr unchanged, 2.4e-3).
auto_scale_lr = dict(base_batch_size=1024)
