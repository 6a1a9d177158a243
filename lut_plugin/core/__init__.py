"""LUT's math in plain PyTorch (masks, L_BC, momentum teacher, MLP): no framework imports."""
# ruff: noqa: F401

from .fused_gelu import LinearGELU, fuse_linear_gelu
from .losses import BroaderContextLoss, negative_cosine_loss
from .masking import DisjointMasks, disjoint_masks_from_noise, gather_tokens, keep_count
from .mlp import ProjectionMLP
from .momentum import MomentumTeacher, cosine_momentum, momentum_update
