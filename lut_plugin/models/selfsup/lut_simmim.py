"""LUT (SimMIM flavour): SimMIM plus the broader-context loss on the unmasked tokens."""

from __future__ import annotations

import torch
from mmpretrain.registry import MODELS

from .lut import LUT, LUTOutputs


def masked_token_mean(
    tokens: torch.Tensor, mask: torch.Tensor, check_visible: bool = True
) -> torch.Tensor:
    """Mean of the tokens at the *unmasked* positions of each sample.

    Args:
        tokens (torch.Tensor): ``(B, L, C)`` patch tokens (no cls token).
        mask (torch.Tensor): ``(B, L)``, 1 = masked, 0 = visible.
        check_visible (bool): Raise if a sample has no visible position. The check reads
            the device's result on the host (a GPU sync); callers whose masks keep a fixed
            number of visible positions skip it.

    Returns:
        torch.Tensor: ``(B, C)``; masked positions contribute nothing (not
        even through their gradient).
    """
    if mask.shape != tokens.shape[:2]:
        raise ValueError(
            f"mask {tuple(mask.shape)} does not match the tokens {tuple(tokens.shape[:2])}"
        )
    visible = (1.0 - mask.to(tokens.dtype)).unsqueeze(-1)
    count = visible.sum(dim=1)
    if check_visible and not bool((count > 0).all()):
        raise ValueError("a sample has no visible position to pool")
    return (tokens * visible).sum(dim=1) / count


@MODELS.register_module()
class LUTSimMIM(LUT):
    """LUT (SimMIM flavour, supplementary Table A of the LUT paper).

    SimMIM's encoder (``LUTSimMIMViT``) keeps every token and replaces the masked
    ones by a learnable mask token; a linear head (mmpretrain's
    ``SimMIMLinearDecoder``: 1x1 conv + pixel shuffle) reconstructs the
    normalised pixels of view 1 and ``SimMIMHead`` takes the L1 loss over
    the masked pixels only. The broader-context loss, the projector /
    predictor and the momentum teacher are :class:`LUT`'s
    (:meth:`LUT.broader_context`); only the student's pooling differs: each
    view's feature is the mean of its encoder outputs at its **unmasked**
    positions (cls and mask-token positions excluded), while the teacher pools
    all patch tokens of the full view.

    Masks: one block-level noise draw per image gives view 1 SimMIM's
    block-wise mask and view 2 a disjoint visible set (see ``LUTSimMIMViT``).
    View 2 is also encoded with the mask token at its masked positions.

    Args:
        backbone (dict): ``LUTSimMIMViT`` config.
        neck (dict, optional): ``SimMIMLinearDecoder``. Needed when ``w_mim > 0``.
        head (dict, optional): ``SimMIMHead`` with
            ``PixelReconstructionLoss(criterion='L1', channel=3)``. Needed when
            ``w_mim > 0``.
        projector (dict, optional): Projector ``h`` (``LUTProjectionMLP``).
            Needed when ``w_bc > 0``.
        predictor (dict, optional): Predictor ``q`` (``LUTProjectionMLP``).
            Needed when ``w_bc > 0``.
        loss_bc (dict, optional): The broader-context loss. Defaults to
            ``dict(type='BroaderContextLoss')``.
        w_mim (float): Weight of the reconstruction loss. Defaults to 1.0.
        w_bc (float): Weight of the broader-context loss. Defaults to 0.25.
        base_momentum (float): Teacher momentum at the first iteration.
            Defaults to 0.996.
        end_momentum (float): Teacher momentum at the last iteration.
            Defaults to 1.0.
        pretrained (str, optional): Checkpoint to initialise the whole model from, weights
            only and strictly (as ``LUT``). Replaces ``init_cfg``.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def forward_lut(
        self, x1: torch.Tensor, x2: torch.Tensor, noise: torch.Tensor | None = None
    ) -> LUTOutputs:
        """Run one LUT(SimMIM) step on two views and return every intermediate result.

        Args:
            x1 (torch.Tensor): View 1, normalised, ``(B, 3, H, W)``.
            x2 (torch.Tensor): View 2, normalised, ``(B, 3, H, W)``.
            noise (torch.Tensor, optional): ``(B, N_blocks)`` noise over the
                mask blocks, defining both masks.

        Returns:
            LUTOutputs: Unweighted losses, the masks (``SimMIMMasks``),
            predictions and targets.
        """
        z1, z2, masks = self.backbone.forward_views(x1, x2, noise)
        loss_mim = None
        if self.w_mim > 0:
            rec = self.neck(self.backbone.tokens_to_featmap(z1))
            grid_mask = masks.mask1.reshape(x1.shape[0], *self.backbone.patch_resolution)
            loss_mim = self.head.loss(rec, x1, grid_mask)
        loss_bc = p1 = p2 = t1 = t2 = None
        if self.w_bc > 0:
            extra = self.backbone.num_extra_tokens
            # LUTSimMIMViT checks at build time that each view keeps visible blocks.
            g1 = masked_token_mean(z1[:, extra:], masks.mask1, check_visible=False)
            g2 = masked_token_mean(z2[:, extra:], masks.mask2, check_visible=False)
            loss_bc, p1, p2, t1, t2 = self.broader_context(g1, g2, x1, x2)
        return LUTOutputs(loss_mim, loss_bc, masks, p1, p2, t1, t2)
