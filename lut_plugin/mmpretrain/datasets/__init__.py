"""mmpretrain datasets and transforms of the LUT plugin."""

from .pipelines import lut_view_pipelines
from .toy_shapes import ToyShapesDataset
from .transforms import PaddedRandomCrop, PILColorJitter, adjust_hue_bgr

__all__ = [
    "PILColorJitter",
    "PaddedRandomCrop",
    "ToyShapesDataset",
    "adjust_hue_bgr",
    "lut_view_pipelines",
]
