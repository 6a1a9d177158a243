"""mmpretrain's ``SelfSupDataPreprocessor`` that can distort view 2 on the device."""

from __future__ import annotations

import torch
from mmpretrain.models.utils import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS

from lut_plugin.datasets.photometric_torch import distort
from lut_plugin.datasets.transforms import PHOTOMETRIC_PARAMS_KEY as PARAMS_KEY


@MODELS.register_module()
class LUTDataPreprocessor(SelfSupDataPreprocessor):
    """``SelfSupDataPreprocessor`` that first distorts view 2 on the device when the samples
    carry ``LUTPhotometricParams``' draws, pixel for pixel as ``LUTPhotometricDistortion``.

    Args:
        **kwargs: The arguments of ``SelfSupDataPreprocessor``.
    """

    def forward(self, data: dict, training: bool = False):
        samples = data.get("data_samples")
        if samples and PARAMS_KEY in samples[0]:
            inputs = self.cast_data(data["inputs"])
            if not isinstance(inputs, list) or len(inputs) != 2:
                raise ValueError(
                    f"{PARAMS_KEY} parameters need the two views of LUT's pipeline, got "
                    f"{type(inputs).__name__} inputs"
                )
            # mmengine runs the preprocessor inside the AMP context: keep the exact arithmetic
            with torch.autocast(inputs[1].device.type, enabled=False):
                view2 = distort(inputs[1], [s.get(PARAMS_KEY) for s in samples])
            data = {**data, "inputs": [inputs[0], view2]}
        return super().forward(data, training)
