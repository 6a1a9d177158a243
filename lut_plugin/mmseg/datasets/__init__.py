"""mmseg datasets of the LUT plugin."""

from .toy_ade import ToyADE20KDataset

__all__ = ["ToyADE20KDataset"]
