"""LUT on MFF: ``LUTViT`` with MFF's multi-level feature fusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup.mae import MAEViT
from mmpretrain.models.selfsup.mff import MFFViT
from mmpretrain.registry import MODELS

from .lut_vit import LUTViT


@MODELS.register_module()
class LUTMFFViT(LUTViT, MFFViT):
    """``LUTViT`` with ``MFFViT``'s fusion of the ``out_indices`` blocks (`MFF
    <https://arxiv.org/abs/2308.00261>`_), whose weights it loads.

    Args:
        out_indices (Sequence[int]): The fused blocks (MFF's ViT-B: 0, 2, 4, 6, 8, 11).
        **kwargs: The arguments of ``LUTViT``.
    """

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        levels, last = [], self.out_indices[-1]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                levels.append(x if i == last else self.proj_layers[self.out_indices.index(i)](x))
        return self.norm1((torch.stack(levels) * F.softmax(self.proj_weights, dim=0)).sum(dim=0))

    def forward(self, x: torch.Tensor, mask: bool | None = True):
        """``MFFViT``'s forward; without a mask, the plain ViT's (``MFFViT`` would mask)."""
        return super().forward(x, mask) if mask else MAEViT.forward(self, x, None)
