# LUT ViT-B/16, 400 epochs, with view 2's photometric transforms (colour jitter and one of
# grayscale / solarize / blur) applied on the GPU by LUTDataPreprocessor instead of in the
# CPU workers: the same pixels and random draws as lut_vitb_400e.py, for machines with few
# CPU cores per GPU (docs/results/speed.md). Everything else as lut_vitb_400e.py.
_base_ = './lut_vitb_400e.py'

# the workers only decode, resize and crop (about 1.7 x the images per core of the full
# two-view pipeline, docs/results/speed.md): the base MAE config's 8 per GPU
train_dataloader = dict(
    num_workers=8,
    dataset=dict(pipeline={{_base_.lut_train_pipeline_photometric_on_device}}))
data_preprocessor = dict(type='LUTDataPreprocessor')
