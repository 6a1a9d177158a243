"""mmsegmentation adapters: the ``LUTMAE`` backbone and the toy ADE20K-layout dataset."""

from .datasets import ToyADE20KDataset
from .models import LUTMAE

__all__ = ["LUTMAE", "ToyADE20KDataset"]
