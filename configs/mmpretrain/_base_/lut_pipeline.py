# LUT's two-view training pipeline (METHOD.md step 1), a base-config snippet. The pipeline is
# defined once, by lut_plugin.datasets.lut_view_pipelines (its docstring lists every step):
# a short-side resize once per image, then each view its own 4 px reflect-padded random crop
# and flip; view 2 then colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8 and exactly one of
# grayscale / solarize / Gaussian blur, pixel for pixel as torchvision on PIL images.
# Normalisation is the upstream MAE data_preprocessor's. Use it next to an upstream MAE config
# (the names do not collide with its bases):
#
#   _base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
#             './_base_/lut_pipeline.py']
#   custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)
#   train_dataloader = dict(dataset=dict(pipeline=_base_.lut_train_pipeline))
#
# Another size (e.g. 32 px): call lut_view_pipelines(32) in that config, after its `_base_`.
# `lut_train_pipeline_photometric_on_device` leaves view 2's photometric operations to
# `data_preprocessor = dict(type='LUTDataPreprocessor')` on the GPU, with the same random
# draws and pixels (lut_vitb_400e_photometric-on-gpu.py).
_base_ = []  # assigned before the import: mmengine then reads this as a plain config

from lut_plugin.datasets import lut_view_pipelines

view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(224, padding=4)
lut_train_pipeline_photometric_on_device = lut_view_pipelines(224, photometric_on_device=True)[2]
