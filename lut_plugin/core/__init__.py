"""Framework-agnostic LUT math (plain PyTorch).

Everything that defines the method lives here once; the mmpretrain, mmseg and
lightly adapters are thin layers over these functions and modules.
"""

from .fused_gelu import LinearGELU, fuse_linear_gelu
from .losses import broader_context_loss, negative_cosine_loss
from .masking import DisjointMasks, disjoint_masks_from_noise, gather_tokens, keep_count
from .mlp import build_projection_mlp, projection_mlp_blocks
from .momentum import MomentumTeacher, cosine_momentum, momentum_update

__all__ = [
    "DisjointMasks",
    "LinearGELU",
    "MomentumTeacher",
    "broader_context_loss",
    "build_projection_mlp",
    "cosine_momentum",
    "disjoint_masks_from_noise",
    "fuse_linear_gelu",
    "gather_tokens",
    "keep_count",
    "momentum_update",
    "negative_cosine_loss",
    "projection_mlp_blocks",
]
