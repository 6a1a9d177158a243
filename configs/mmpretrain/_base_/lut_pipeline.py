# LUT two-view training pipeline (METHOD.md step 1), a base-config snippet.
#
# Once per image: resize the short side to `lut_img_size` (antialiased bicubic as PIL;
# torchvision's uint8 kernel, within 1 grey level of PIL); the resize is deterministic, so
# doing it before the views split equals doing it in each view.
# Each view: random crop of `lut_img_size` after `lut_crop_padding` px reflect padding ->
# random horizontal flip (each view draws its own). View 2 then: ColorJitter(0.4, 0.4, 0.2,
# 0.1) with p=0.8 and exactly one of {grayscale, solarize (thr 128), Gaussian blur
# (radius ~ U[0.1, 2.0])}, pixel for pixel as torchvision on PIL images.
# Normalisation (ImageNet mean/std, to_rgb) is done by the upstream MAE data_preprocessor.
#
# Names are chosen not to collide with the upstream MAE bases (mmengine refuses a key that
# two bases both define, e.g. `train_pipeline`). Use it next to an upstream MAE config:
#
#   _base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
#             './_base_/lut_pipeline.py']
#   custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)
#   train_dataloader = dict(dataset=dict(pipeline=_base_.lut_train_pipeline))
#
# Another image size (e.g. a 32 px CPU config): the same dicts come from
#   from lut_plugin.mmpretrain.datasets.pipelines import lut_view_pipelines
#   view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(32)
# (assign `_base_` before that import). tests/test_transforms.py checks both agree.

lut_img_size = 224
lut_crop_padding = 4

view_pipeline1 = [
    dict(
        type='LUTPaddedRandomCrop',  # lut_plugin: mmpretrain's RandomCrop pads constant only
        crop_size=lut_img_size,
        padding=lut_crop_padding,
        padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]

view_pipeline2 = [dict(t) for t in view_pipeline1] + [
    dict(
        type='LUTPhotometricDistortion',  # lut_plugin: jitter (p) + one of gray/solarize/blur
        brightness=0.4,
        contrast=0.4,
        saturation=0.2,
        hue=0.1,
        jitter_prob=0.8,
        blur_radius=(0.1, 2.0),
        solarize_threshold=128),
]

lut_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='LUTResizeEdge',  # once for both views; backend='pillow' for PIL's pixels
        scale=lut_img_size,
        edge='short',
        backend='torchvision',
        interpolation='bicubic'),
    dict(type='MultiView', num_views=[1, 1], transforms=[view_pipeline1, view_pipeline2]),
    dict(type='PackInputs'),
]

# The same pipeline with view 2's photometric transforms on the GPU: the workers only draw
# their parameters (after MultiView, in the same random order) and LUTDataPreprocessor
# applies them, pixel for pixel the same. Use with
#   train_dataloader = dict(dataset=dict(pipeline=_base_.lut_train_pipeline_photometric_on_device))
#   data_preprocessor = dict(type='LUTDataPreprocessor')
# (lut_vitb_400e_photometric-on-gpu.py).
lut_train_pipeline_photometric_on_device = [
    *lut_train_pipeline[:2],
    dict(type='MultiView', num_views=[1, 1], transforms=[view_pipeline1, view_pipeline1]),
    dict(view_pipeline2[-1], type='LUTPhotometricParams'),
    dict(type='PackInputs', algorithm_keys=['lut_photometric']),
]
