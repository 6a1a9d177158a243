"""LUT building blocks in lightly's style, for lightly / plain PyTorch training loops.

Thin wrappers over :mod:`lut_plugin.core`, plus LUT's two views as a lightly transform;
``examples/lightly_lut.py`` trains LUT with them and lightly's ``MaskedVisionTransformerTIMM``
/ ``MaskedVisionTransformerDecoderTIMM``.
"""

from lut_plugin.core import BroaderContextLoss, MomentumTeacher, cosine_momentum  # re-exported

from .heads import LUTPredictionHead, LUTProjectionHead
from .masking import disjoint_token_masks
from .transforms import LUTTransform, LUTView1Transform, LUTView2Transform

__all__ = [
    "BroaderContextLoss",
    "LUTPredictionHead",
    "LUTProjectionHead",
    "LUTTransform",
    "LUTView1Transform",
    "LUTView2Transform",
    "MomentumTeacher",
    "cosine_momentum",
    "disjoint_token_masks",
]
