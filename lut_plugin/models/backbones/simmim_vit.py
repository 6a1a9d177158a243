"""ViT encoder for SimMIM: every token is kept, masked ones become a learnable mask token."""

from __future__ import annotations

from typing import NamedTuple

import torch
from mmengine.utils import to_2tuple
from mmpretrain.models.selfsup.beit import BEiTPretrainViT
from mmpretrain.registry import MODELS

from lut_plugin.core import DisjointMasks, disjoint_masks_from_noise, keep_count

from .lut_vit import CheckpointedLayers, TwoViewLatents
from .patch_embed import embed_patches


class SimMIMMasks(NamedTuple):
    """``(B, L)`` patch-grid masks of LUT(SimMIM)'s views (1 = masked, replaced by the mask
    token) and the block-level ``DisjointMasks`` they were expanded from."""

    mask1: torch.Tensor
    mask2: torch.Tensor
    blocks: DisjointMasks


@MODELS.register_module()
class LUTSimMIMViT(BEiTPretrainViT):
    """SimMIM's ViT encoder, usable by mmpretrain's ``SimMIM`` and by ``LUTSimMIM``.

    SimMIM's ViT (`SimMIM <https://arxiv.org/abs/2111.09886>`_) is BEiT's: cls token, a
    relative position bias shared by all blocks, layer scale, q/v biases, final LayerNorm --
    mmpretrain's ``BEiTPretrainViT``, whose weights this class loads unchanged. It keeps all
    ``L`` patch tokens; masked ones become a learnable mask token before the blocks.
    ``forward(x, mask)`` returns ``(featmap,)``, the ``(B, C, H/p, W/p)`` map that
    ``SimMIMLinearDecoder`` reads; :meth:`forward_views` encodes LUT's two views and
    :meth:`forward_full` unmasked images (the teacher).

    Masks are block-wise as in SimMIM: whole squares of ``mask_patch_size`` pixels. One noise
    draw over the blocks is sorted; view 1 keeps the first ``keep = int(N_blocks * (1 -
    mask_ratio))`` blocks, view 2 the next ``keep`` (the MAE flavour's split, one level
    coarser). View 1 thus gets SimMIM's mask (0.6 masks 30 of 49 blocks at 224 px, as
    ``SimMIMMaskGenerator``); ``mask_ratio >= 0.5`` keeps the visible sets disjoint.

    Args:
        arch (str | dict): ViT architecture, as in ``BEiTViT``. Defaults to ``'base'``.
        img_size (int | tuple): Input image size. Defaults to 224.
        patch_size (int | tuple): Patch size. Defaults to 16.
        mask_ratio (float): Fraction of mask blocks removed from each LUT view; must lie in
            ``[0.5, 1)``. Defaults to 0.6 (SimMIM).
        mask_patch_size (int): Side of a mask block in pixels; a multiple of ``patch_size``
            that divides ``img_size``. Defaults to 32.
        with_cp (bool): Activation checkpointing of the blocks, as ``LUTViT``'s.
            Defaults to False.
        **kwargs: Other arguments of ``BEiTPretrainViT``.
    """

    def __init__(
        self,
        arch: str | dict = "base",
        img_size: int | tuple = 224,
        patch_size: int | tuple = 16,
        mask_ratio: float = 0.6,
        mask_patch_size: int = 32,
        with_cp: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, **kwargs)
        patch_hw, grid = to_2tuple(patch_size), tuple(self.patch_resolution)
        if any(mask_patch_size % p for p in patch_hw):
            raise ValueError(
                f"mask_patch_size ({mask_patch_size}) must be a multiple of the patch size "
                f"{tuple(patch_hw)}"
            )
        self.mask_scale = tuple(mask_patch_size // p for p in patch_hw)
        if any(g % s for g, s in zip(grid, self.mask_scale)):
            raise ValueError(
                f"the {grid} patch grid cannot be cut into {mask_patch_size} px mask blocks: "
                f"img_size must be a multiple of mask_patch_size"
            )
        self.mask_ratio, self.mask_patch_size = float(mask_ratio), int(mask_patch_size)
        self.block_resolution = tuple(g // s for g, s in zip(grid, self.mask_scale))
        self.num_blocks = self.block_resolution[0] * self.block_resolution[1]
        self.num_patches = grid[0] * grid[1]
        self.num_keep_blocks = keep_count(self.num_blocks, self.mask_ratio)  # fails at build
        self.with_cp = bool(with_cp)
        if self.with_cp:
            self.layers = CheckpointedLayers(self.layers)

    def draw_noise(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """The noise over the mask blocks that defines both masks, ``(B, N_blocks)``."""
        return torch.rand(batch_size, self.num_blocks, device=device)

    def masks_from_noise(self, noise: torch.Tensor) -> SimMIMMasks:
        """Block-wise masks of both views from ``(B, N_blocks)`` noise (class docstring)."""
        if noise.dim() != 2 or noise.shape[1] != self.num_blocks:
            raise ValueError(
                f"noise must be (batch, num_blocks) with num_blocks = {self.num_blocks} "
                f"({self.block_resolution} blocks of {self.mask_patch_size} px), "
                f"got {tuple(noise.shape)}"
            )
        blocks = disjoint_masks_from_noise(noise, self.mask_ratio)
        (bh, bw), (sh, sw) = self.block_resolution, self.mask_scale

        def to_patches(block_mask: torch.Tensor) -> torch.Tensor:
            mask = block_mask.reshape(-1, bh, bw).repeat_interleave(sh, dim=1)
            return mask.repeat_interleave(sw, dim=2).flatten(1)

        return SimMIMMasks(to_patches(blocks.mask1), to_patches(blocks.mask2), blocks)

    def encode_masked(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """All tokens ``(B, 1 + L, C)`` after the final norm, cls first, the masked patches
        (``mask``: ``(B, L)`` or ``(B, H/p, W/p)``, 1 = masked) replaced by the mask token."""
        tokens = embed_patches(self.patch_embed, x, self.patch_resolution)
        batch, length, _ = tokens.shape
        if mask is not None:
            mask = mask.reshape(batch, -1)
            if mask.shape[1] != length:
                raise ValueError(
                    f"mask has {mask.shape[1]} entries per image, the image has {length} patches"
                )
            w = mask.unsqueeze(-1).type_as(tokens)
            tokens = tokens * (1.0 - w) + self.mask_token.expand(batch, length, -1) * w
        tokens = torch.cat((self.cls_token.expand(batch, -1, -1), tokens), dim=1)
        if self.pos_embed is not None:
            tokens = tokens + self.pos_embed
        tokens = self.drop_after_pos(tokens)
        rel_pos_bias = self.rel_pos_bias() if self.rel_pos_bias is not None else None
        for layer in self.layers:
            tokens = layer(tokens, rel_pos_bias=rel_pos_bias)
        return self.norm1(tokens) if self.final_norm else tokens

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """Encode every patch (no masking): ``(B, 1 + L, C)`` after the final norm."""
        return self.encode_masked(x, None)

    def tokens_to_featmap(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + L, C)`` tokens -> ``(B, C, H/p, W/p)`` map of the patch tokens."""
        patch_tokens = tokens[:, self.num_extra_tokens :]
        return patch_tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *self.patch_resolution)

    def forward_views(
        self, x1: torch.Tensor, x2: torch.Tensor, noise: torch.Tensor | None = None
    ) -> TwoViewLatents:
        """Encode two views (``(B, 3, H, W)`` each) whose masks come from one block-level
        noise draw ``(B, N_blocks)`` (drawn with ``torch.rand`` when omitted)."""
        if x1.shape != x2.shape:
            raise ValueError(f"views differ in shape: {tuple(x1.shape)} vs {tuple(x2.shape)}")
        batch = x1.shape[0]
        masks = self.masks_from_noise(self.draw_noise(batch, x1.device) if noise is None else noise)
        # One pass for both views: the encoder has no cross-sample layer.
        tokens = self.encode_masked(torch.cat([x1, x2]), torch.cat([masks.mask1, masks.mask2]))
        return TwoViewLatents(*tokens.split(batch), masks)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """With a mask (``(B, H/p, W/p)`` or ``(B, L)``, 1 = masked): ``(featmap,)`` for
        ``SimMIMLinearDecoder``; without one, the plain ``BEiTViT`` forward."""
        if mask is None:
            return super().forward(x, None)
        return (self.tokens_to_featmap(self.encode_masked(x, mask)),)
