"""mmpretrain's ``SelfSupDataPreprocessor`` that can distort view 2 on the device."""

from __future__ import annotations

import torch
from mmpretrain.models.utils import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS

from lut_plugin.datasets.photometric_torch import distort
from lut_plugin.datasets.transforms import PHOTOMETRIC_PARAMS_KEY as PARAMS_KEY


@MODELS.register_module()
class LUTDataPreprocessor(SelfSupDataPreprocessor):
    """``SelfSupDataPreprocessor`` that applies view 2's photometric transforms on the device.

    When the data samples carry ``lut_photometric`` parameters (drawn by the pipeline's
    ``LUTPhotometricParams``), view 2 (the second input) is distorted on the device, image
    by image with its own parameters and pixel for pixel as the CPU transform
    ``LUTPhotometricDistortion``, before the usual channel conversion and normalisation.
    Otherwise it is ``SelfSupDataPreprocessor``.

    Args:
        **kwargs: The arguments of ``SelfSupDataPreprocessor`` (``mean``, ``std``,
            ``to_rgb``...).
    """

    def forward(self, data: dict, training: bool = False):
        """Distort view 2 if the pipeline deferred it, then preprocess as upstream."""
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
