"""mmpretrain datasets and transforms of the LUT plugin."""

from .pipelines import lut_view_pipelines
from .toy_shapes import LUTToyShapesDataset
from .transforms import LUTPaddedRandomCrop, LUTPhotometricDistortion

__all__ = [
    "LUTPaddedRandomCrop",
    "LUTPhotometricDistortion",
    "LUTToyShapesDataset",
    "lut_view_pipelines",
]
