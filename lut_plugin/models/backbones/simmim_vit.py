"""ViT encoder for SimMIM: every token is kept, masked ones become a learnable mask token."""

from __future__ import annotations

from typing import NamedTuple

import torch
from mmengine.utils import to_2tuple
from mmpretrain.models.selfsup.beit import BEiTPretrainViT
from mmpretrain.registry import MODELS

from lut_plugin.core import DisjointMasks, disjoint_masks_from_noise, keep_count

from .patch_embed import embed_patches


class SimMIMMasks(NamedTuple):
    """Masks of LUT(SimMIM)'s two views.

    ``mask1``/``mask2`` are ``(B, L)`` over the patch grid (row-major), with
    SimMIM's and MAE's convention: 1 = masked (replaced by the mask token),
    0 = visible. ``blocks`` holds the block-level masks they were expanded from
    (one noise draw, disjoint visible sets, see
    :func:`lut_plugin.core.disjoint_masks_from_noise`).
    """

    mask1: torch.Tensor
    mask2: torch.Tensor
    blocks: DisjointMasks


class SimMIMViews(NamedTuple):
    """Encoder outputs of the two masked views, ``(B, 1 + L, C)`` each, cls first."""

    z1: torch.Tensor
    z2: torch.Tensor
    masks: SimMIMMasks


@MODELS.register_module()
class LUTSimMIMViT(BEiTPretrainViT):
    """ViT-B/16 encoder of SimMIM, usable by mmpretrain's ``SimMIM`` and by ``LUTSimMIM``.

    SimMIM's ViT (`SimMIM: A Simple Framework for Masked Image Modeling
    <https://arxiv.org/abs/2111.09886>`_) is BEiT's: a cls token, no absolute
    position embedding, a relative position bias shared by all blocks, layer
    scale 0.1, q/v biases and a final LayerNorm (eps 1e-6) -- mmpretrain's
    ``BEiTPretrainViT``, whose weights this class loads unchanged. Unlike MAE's
    encoder it keeps all ``L`` patch tokens; masked ones are replaced by a
    learnable mask token before the blocks.

    What this class adds:

    - ``forward(x, mask)`` with a mask returns ``(featmap,)``, the patch tokens
      after the final norm as ``(B, C, H/p, W/p)``, which is what mmpretrain's
      ``SimMIMLinearDecoder`` reads (so the upstream ``SimMIM`` algorithm can
      use this ViT with masks from the ``SimMIMMaskGenerator`` transform);
    - :meth:`forward_views`: LUT's two views with block-wise masks whose
      visible sets are disjoint, drawn from one noise tensor;
    - :meth:`forward_full`: all tokens of unmasked images, for LUT's teacher.

    Masks are block-wise as in SimMIM: the image is cut into square blocks of
    ``mask_patch_size`` pixels (32 for ViT-B/16, i.e. 2x2 patches) and whole
    blocks are masked. For LUT, one noise draw over the blocks is sorted;
    view 1 keeps the first ``keep = int(N_blocks * (1 - mask_ratio))`` blocks
    and view 2 the next ``keep`` (the same split as the MAE flavour, one level
    coarser). View 1 thus gets exactly SimMIM's mask (``mask_ratio`` 0.6 masks
    ``ceil(0.6 * 49) = 30`` of 49 blocks at 224 px, as ``SimMIMMaskGenerator``),
    and ``mask_ratio >= 0.5`` is required for the two visible sets to be disjoint.

    Args:
        arch (str | dict): ViT architecture, as in ``BEiTViT``. Defaults to
            ``'base'``.
        img_size (int | tuple): Input image size. Defaults to 224.
        patch_size (int | tuple): Patch size. Defaults to 16.
        mask_ratio (float): Fraction of mask blocks removed from each LUT view;
            must lie in ``[0.5, 1)``. Defaults to 0.6 (SimMIM).
        mask_patch_size (int): Side of a square mask block in pixels; a
            multiple of ``patch_size`` that divides ``img_size``. Defaults to 32.
        **kwargs: Other arguments of ``BEiTPretrainViT`` (``drop_path_rate``,
            ``use_shared_rel_pos_bias``, ``layer_scale_init_value``,
            ``final_norm``, ``out_type``, ``init_cfg``...).
    """

    def __init__(
        self,
        arch: str | dict = "base",
        img_size: int | tuple = 224,
        patch_size: int | tuple = 16,
        mask_ratio: float = 0.6,
        mask_patch_size: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, **kwargs)
        patch_hw = to_2tuple(patch_size)
        if any(mask_patch_size % p for p in patch_hw):
            raise ValueError(
                f"mask_patch_size ({mask_patch_size}) must be a multiple of the patch size "
                f"{tuple(patch_hw)}"
            )
        self.mask_scale = tuple(mask_patch_size // p for p in patch_hw)
        grid = tuple(self.patch_resolution)
        if any(g % s for g, s in zip(grid, self.mask_scale)):
            raise ValueError(
                f"the {grid} patch grid cannot be cut into {mask_patch_size} px mask blocks: "
                f"img_size must be a multiple of mask_patch_size"
            )
        self.mask_ratio = float(mask_ratio)
        self.mask_patch_size = int(mask_patch_size)
        self.block_resolution = tuple(g // s for g, s in zip(grid, self.mask_scale))
        self.num_blocks = self.block_resolution[0] * self.block_resolution[1]
        self.num_patches = grid[0] * grid[1]
        # Fail at build time, not at the first iteration.
        self.num_keep_blocks = keep_count(self.num_blocks, self.mask_ratio)

    # -- masks ---------------------------------------------------------------
    def draw_noise(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """The per-sample noise over the mask blocks that defines both masks, ``(B, N_blocks)``."""
        return torch.rand(batch_size, self.num_blocks, device=device)

    def blocks_to_patches(self, block_mask: torch.Tensor) -> torch.Tensor:
        """Expand a ``(B, N_blocks)`` block mask to the ``(B, L)`` patch grid."""
        bh, bw = self.block_resolution
        sh, sw = self.mask_scale
        mask = block_mask.reshape(-1, bh, bw)
        mask = mask.repeat_interleave(sh, dim=1).repeat_interleave(sw, dim=2)
        return mask.flatten(1)

    def masks_from_noise(self, noise: torch.Tensor) -> SimMIMMasks:
        """Block-wise masks of both views from one noise draw (see the class docstring).

        Args:
            noise (torch.Tensor): ``(B, N_blocks)`` noise.

        Returns:
            SimMIMMasks: Patch-level masks of both views and the block-level split.
        """
        if noise.dim() != 2 or noise.shape[1] != self.num_blocks:
            raise ValueError(
                f"noise must be (batch, num_blocks) with num_blocks = {self.num_blocks} "
                f"({self.block_resolution} blocks of {self.mask_patch_size} px), "
                f"got {tuple(noise.shape)}"
            )
        blocks = disjoint_masks_from_noise(noise, self.mask_ratio)
        return SimMIMMasks(
            self.blocks_to_patches(blocks.mask1), self.blocks_to_patches(blocks.mask2), blocks
        )

    # -- encoding ------------------------------------------------------------
    def _embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Cls token + patch tokens (masked ones replaced) + position embedding."""
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
        return self.drop_after_pos(tokens)

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the blocks (with the shared relative position bias) and the final norm."""
        rel_pos_bias = self.rel_pos_bias() if self.rel_pos_bias is not None else None
        for layer in self.layers:
            tokens = layer(tokens, rel_pos_bias=rel_pos_bias)
        return self.norm1(tokens) if self.final_norm else tokens

    def encode_masked(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """All tokens of masked images, ``(B, 1 + L, C)`` after the final norm.

        Args:
            x (torch.Tensor): Images, ``(B, 3, H, W)``.
            mask (torch.Tensor): ``(B, L)`` or ``(B, H/p, W/p)``; 1 = masked.

        Returns:
            torch.Tensor: Cls token first, then the ``L`` patch tokens in grid order.
        """
        return self._encode(self._embed(x, mask))

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """Encode every patch (no masking): ``(B, 1 + L, C)`` after the final norm."""
        return self._encode(self._embed(x, None))

    def tokens_to_featmap(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + L, C)`` tokens -> ``(B, C, H/p, W/p)`` map of the patch tokens."""
        h, w = self.patch_resolution
        patch_tokens = tokens[:, self.num_extra_tokens :]
        return patch_tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)

    def forward_views(
        self, x1: torch.Tensor, x2: torch.Tensor, noise: torch.Tensor | None = None
    ) -> SimMIMViews:
        """Encode two views whose masks come from one block-level noise draw.

        Args:
            x1 (torch.Tensor): View 1, ``(B, 3, H, W)``.
            x2 (torch.Tensor): View 2, ``(B, 3, H, W)``.
            noise (torch.Tensor, optional): ``(B, N_blocks)`` noise; drawn with
                ``torch.rand`` when omitted.

        Returns:
            SimMIMViews: All tokens of both views and their masks.
        """
        if x1.shape != x2.shape:
            raise ValueError(f"views differ in shape: {tuple(x1.shape)} vs {tuple(x2.shape)}")
        batch = x1.shape[0]
        if noise is None:
            noise = self.draw_noise(batch, x1.device)
        masks = self.masks_from_noise(noise)
        # One pass for both views: the encoder has no cross-sample layer.
        tokens = self.encode_masked(torch.cat([x1, x2]), torch.cat([masks.mask1, masks.mask2]))
        z1, z2 = tokens.split(batch)
        return SimMIMViews(z1, z2, masks)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """SimMIM forward.

        Args:
            x (torch.Tensor): Images, ``(B, 3, H, W)``.
            mask (torch.Tensor, optional): ``(B, H/p, W/p)`` or ``(B, L)``,
                1 = masked. Without it, the plain ``BEiTViT`` forward
                (``out_type``, ``out_indices``) runs.

        Returns:
            tuple[torch.Tensor, ...]: With a mask, ``(featmap,)`` of shape
            ``(B, C, H/p, W/p)`` for ``SimMIMLinearDecoder``.
        """
        if mask is None:
            return super().forward(x, None)
        return (self.tokens_to_featmap(self.encode_masked(x, mask)),)
