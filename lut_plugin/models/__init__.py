"""LUT's components, registered in mmpretrain's ``MODELS``."""
# ruff: noqa: F401

from mmpretrain.registry import MODELS

from lut_plugin.core import BroaderContextLoss

from .backbones.lut_vit import LUTViT
from .backbones.mff_vit import LUTMFFViT
from .backbones.simmim_vit import LUTSimMIMViT
from .data_preprocessor import LUTDataPreprocessor
from .necks import LUTProjectionMLP
from .selfsup.lut import LUT
from .selfsup.lut_simmim import LUTSimMIM

MODELS.register_module(module=BroaderContextLoss)
