"""LUT building blocks in lightly's style, for lightly / plain PyTorch training loops.

Thin wrappers over :mod:`lut_plugin.core`; see ``tests/test_lightly_adapter.py`` for a
complete LUT step with lightly's ``MaskedVisionTransformerTIMM`` and ``MAEDecoderTIMM``.
"""

from lut_plugin.core import MomentumTeacher, cosine_momentum  # noqa: E402  (re-exported)

from .heads import LUTPredictionHead, LUTProjectionHead
from .loss import BroaderContextLoss
from .masking import disjoint_token_masks

__all__ = [
    "BroaderContextLoss",
    "LUTPredictionHead",
    "LUTProjectionHead",
    "MomentumTeacher",
    "cosine_momentum",
    "disjoint_token_masks",
]
