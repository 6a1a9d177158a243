"""LUT (SimMIM flavour): SimMIM plus the broader-context loss on the unmasked tokens."""

from __future__ import annotations

import torch
from mmpretrain.registry import MODELS

from .lut import LUT


@MODELS.register_module()
class LUTSimMIM(LUT):
    """LUT (SimMIM flavour, supplementary Table A of the LUT paper).

    SimMIM's encoder (``LUTSimMIMViT``) keeps every token and replaces the masked ones by a
    learnable mask token; mmpretrain's ``SimMIMLinearDecoder`` reconstructs view 1 and
    ``SimMIMHead`` takes the L1 loss over its masked pixels. The student pools each view's
    encoder outputs at its **unmasked** positions; the rest (projector, predictor, teacher,
    L_BC, the arguments) is :class:`LUT`'s, with ``LUTSimMIMViT``'s block-level noise
    ``(B, N_blocks)`` as ``noise``.
    """

    def mim_loss(self, z1: torch.Tensor, x1: torch.Tensor, masks: tuple) -> torch.Tensor:
        """The decoder reconstructs view 1 from all its tokens (as ``SimMIM.loss``)."""
        rec = self.neck(self.backbone.tokens_to_featmap(z1))
        return self.head.loss(rec, x1, masks.mask1.reshape(-1, *self.backbone.patch_resolution))

    def pool(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean of the patch tokens at the unmasked positions (``mask``: 1 = masked);
        ``LUTSimMIMViT`` checks at build time that every view keeps some."""
        visible = (1.0 - mask.to(z.dtype)).unsqueeze(-1)
        return (z[:, self.backbone.num_extra_tokens :] * visible).sum(dim=1) / visible.sum(dim=1)
