"""mmsegmentation adapters: the ``LUTMAE`` backbone and the toy ADE20K-layout dataset."""

from .datasets import LUTToyADE20KDataset
from .models import LUTMAE

__all__ = ["LUTMAE", "LUTToyADE20KDataset"]
