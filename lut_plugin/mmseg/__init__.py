"""mmsegmentation adapters: the ``LUTMAE`` backbone and the toy ADE20K-layout dataset."""

from .lut_mae import LUTMAE
from .toy_ade import LUTToyADE20KDataset

__all__ = ["LUTMAE", "LUTToyADE20KDataset"]
