"""LUT (SimMIM flavour): SimMIM plus the broader-context loss on the unmasked tokens."""

from __future__ import annotations

import torch
from mmpretrain.registry import MODELS

from .lut import LUT


@MODELS.register_module()
class LUTSimMIM(LUT):
    """LUT on SimMIM (the paper's supplementary Table A): ``LUTSimMIMViT``, SimMIM's decoder and
    L1 loss on view 1, each view pooled at its unmasked positions; else :class:`LUT`."""

    def mim_loss(self, z1: torch.Tensor, x1: torch.Tensor, masks: tuple) -> torch.Tensor:
        """The decoder reconstructs view 1 from all its tokens (as ``SimMIM.loss``)."""
        rec = self.neck(self.backbone.tokens_to_featmap(z1))
        return self.head.loss(rec, x1, masks.mask1.reshape(-1, *self.backbone.patch_resolution))

    def pool(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean of the patch tokens at the unmasked positions (``mask``: 1 = masked)."""
        visible = (1.0 - mask.to(z.dtype)).unsqueeze(-1)
        return (z[:, self.backbone.num_extra_tokens :] * visible).sum(dim=1) / visible.sum(dim=1)
