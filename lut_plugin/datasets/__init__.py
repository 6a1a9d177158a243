"""LUT's data: the two-view pipeline's transforms and the embedded toy datasets."""

from .toy_shapes import LUTToyShapesDataset
from .transforms import (
    LUTPaddedRandomCrop,
    LUTPhotometricDistortion,
    LUTPhotometricParams,
    LUTResizeEdge,
    lut_view_pipelines,
)

__all__ = ["LUTPaddedRandomCrop", "LUTPhotometricDistortion", "LUTPhotometricParams",
           "LUTResizeEdge", "LUTToyShapesDataset", "lut_view_pipelines"]  # fmt: skip
