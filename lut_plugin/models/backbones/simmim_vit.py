"""ViT encoder for SimMIM: every token is kept, masked ones become a learnable mask token."""

from __future__ import annotations

from typing import NamedTuple

import torch
from mmengine.utils import to_2tuple
from mmpretrain.models.selfsup.beit import BEiTPretrainViT
from mmpretrain.registry import MODELS

from lut_plugin.core import disjoint_masks_from_noise, keep_count

from .lut_vit import CheckpointedLayers
from .patch_embed import embed_patches


class SimMIMMasks(NamedTuple):
    """Both views' ``(B, L)`` patch masks (1 = mask token)."""

    mask1: torch.Tensor
    mask2: torch.Tensor


@MODELS.register_module()
class LUTSimMIMViT(BEiTPretrainViT):
    """SimMIM's ViT (`SimMIM <https://arxiv.org/abs/2111.09886>`_), i.e. ``BEiTPretrainViT``
    (same weights), for ``SimMIM`` (``forward(x, mask)``: ``(featmap,)``) and ``LUTSimMIM``.
    Masks are SimMIM's blocks, one noise split as ``disjoint_masks_from_noise``.

    Args:
        arch (str | dict): ViT architecture, as in ``BEiTViT``. Defaults to ``'base'``.
        img_size (int | tuple): Input image size. Defaults to 224.
        patch_size (int | tuple): Patch size. Defaults to 16.
        mask_ratio (float): Fraction of blocks removed from each view. Defaults to 0.6.
        mask_patch_size (int): Block side in pixels, a multiple of ``patch_size``. Defaults to 32.
        with_cp (bool): Activation checkpointing of the blocks. Defaults to False.
        **kwargs: Other arguments of ``BEiTPretrainViT``.
    """

    def __init__(self, arch: str | dict = "base", img_size: int | tuple = 224,
                 patch_size: int | tuple = 16, mask_ratio: float = 0.6, mask_patch_size: int = 32,
                 with_cp: bool = False, **kwargs) -> None:  # fmt: skip
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
        self.mask_ratio = float(mask_ratio)
        self.block_resolution = tuple(g // s for g, s in zip(grid, self.mask_scale))
        self.num_blocks = self.block_resolution[0] * self.block_resolution[1]
        keep_count(self.num_blocks, self.mask_ratio)  # fails at build time
        self.with_cp = bool(with_cp)
        if self.with_cp:
            self.layers = CheckpointedLayers(self.layers)

    def masks_from_noise(self, noise: torch.Tensor) -> SimMIMMasks:
        """Both views' block masks from ``(B, N_blocks)`` noise, expanded to patches."""
        blocks = disjoint_masks_from_noise(noise, self.mask_ratio)
        (bh, bw), (sh, sw) = self.block_resolution, self.mask_scale
        both = torch.stack([blocks.mask1, blocks.mask2]).reshape(2, -1, bh, 1, bw, 1)
        mask1, mask2 = both.expand(-1, -1, -1, sh, -1, sw).flatten(2)  # sh x sw patches a block
        return SimMIMMasks(mask1, mask2)

    def encode_masked(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``(B, 1 + L, C)`` final-normed tokens, masked patches (1 in ``mask``) as mask token."""
        tokens = embed_patches(self.patch_embed, x, self.patch_resolution)
        batch, length, _ = tokens.shape
        if mask is not None:
            w = mask.reshape(batch, length, 1).type_as(tokens)
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
        return self.encode_masked(x, None)

    def tokens_to_featmap(self, tokens: torch.Tensor) -> torch.Tensor:
        patch_tokens = tokens[:, self.num_extra_tokens :]
        return patch_tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *self.patch_resolution)

    def forward_views(self, x1: torch.Tensor, x2: torch.Tensor,
                      noise: torch.Tensor | None = None) -> tuple:  # fmt: skip
        """``(z1, z2, masks)`` of two views masked by ``(B, N_blocks)`` noise (drawn if None)."""
        batch = x1.shape[0]
        noise = torch.rand(batch, self.num_blocks, device=x1.device) if noise is None else noise
        masks = self.masks_from_noise(noise)
        tokens = self.encode_masked(torch.cat([x1, x2]), torch.cat([masks.mask1, masks.mask2]))
        return *tokens.split(batch), masks

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple:
        """``(featmap,)`` with a mask (1 = masked), else ``BEiTViT``'s forward."""
        if mask is None:
            return super().forward(x, None)
        return (self.tokens_to_featmap(self.encode_masked(x, mask)),)
