"""mmseg datasets of the LUT plugin."""

from .toy_ade import LUTToyADE20KDataset

__all__ = ["LUTToyADE20KDataset"]
