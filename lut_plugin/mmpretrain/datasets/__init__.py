"""mmpretrain datasets and transforms of the LUT plugin."""

from .named_samples import NamedSampleDataset
from .pipelines import lut_view_pipelines
from .toy_shapes import LUTToyShapesDataset
from .transforms import LUTPaddedRandomCrop, LUTPhotometricDistortion, LUTPhotometricParams

__all__ = [
    "NamedSampleDataset",
    "LUTPaddedRandomCrop",
    "LUTPhotometricDistortion",
    "LUTPhotometricParams",
    "LUTToyShapesDataset",
    "lut_view_pipelines",
]
