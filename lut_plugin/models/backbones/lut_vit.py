"""ViT encoder that encodes two disjointly-masked views in one batched pass."""

from __future__ import annotations

import torch
from mmengine.model import BaseModule, ModuleList
from mmengine.utils import to_2tuple
from mmpretrain.models.selfsup.mae import MAEViT
from mmpretrain.registry import MODELS
from torch import nn
from torch.utils.checkpoint import checkpoint

from lut_plugin.core import disjoint_masks_from_noise, keep_count

from .patch_embed import embed_patches


class CheckpointedLayers(ModuleList):
    """Blocks run under activation checkpointing when iterated in training with gradients (by
    any loop); all else unchanged, and the recomputation restores the RNG state."""

    def __init__(self, layers: nn.ModuleList) -> None:
        super().__init__(layers)
        # torch's ModuleList (the MAE decoder's) leaves its blocks' init_weights uncalled
        self._is_init = not isinstance(layers, BaseModule)

    def __iter__(self):
        layers = super().__iter__()
        return map(_Checkpointed, layers) if self.training and torch.is_grad_enabled() else layers


class _Checkpointed:
    """A block called under ``torch.utils.checkpoint``; other attributes are the block's."""

    def __init__(self, layer: nn.Module) -> None:
        self.layer = layer

    def __call__(self, *args, **kwargs):
        return checkpoint(self.layer, *args, use_reentrant=False, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.layer, name)


@MODELS.register_module()
class LUTViT(MAEViT):
    """``MAEViT`` (same weights) plus :meth:`forward_views` (METHOD.md steps 2-3) and
    :meth:`forward_full`.

    Args:
        arch (str | dict): ViT architecture, as in ``VisionTransformer``. Defaults to ``'b'``.
        img_size (int | tuple): Input image size. Defaults to 224.
        patch_size (int | tuple): Patch size. Defaults to 16.
        mask_ratio (float): Fraction of patches removed from each view. Defaults to 0.75.
        with_cp (bool): Activation checkpointing (also of LUT's decoder). Defaults to False.
        **kwargs: Other arguments of ``MAEViT``.
    """

    def __init__(self, arch: str | dict = "b", img_size: int | tuple = 224,
                 patch_size: int | tuple = 16, mask_ratio: float = 0.75, with_cp: bool = False,
                 **kwargs) -> None:  # fmt: skip
        if any(s % p for s, p in zip(to_2tuple(img_size), to_2tuple(patch_size))):
            raise ValueError(
                f"LUTViT: img_size {img_size} is not a whole number of patches of patch_size "
                f"{patch_size} (the reconstruction target is cut into whole patches)"
            )
        super().__init__(arch, img_size, patch_size, mask_ratio=mask_ratio, **kwargs)
        keep_count(self.num_patches, mask_ratio)  # fails at build time
        heads = self.layers[0].attn.num_heads
        if self.embed_dims % heads:
            raise ValueError(
                f"LUTViT: embed_dims {self.embed_dims} is not divisible by num_heads {heads}"
            )
        self.with_cp = bool(with_cp)
        if self.with_cp:
            self.layers = CheckpointedLayers(self.layers)

    def _embed_patches(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        tokens = embed_patches(self.patch_embed, x, self.patch_resolution, ids)
        pos = self.pos_embed[:, 1:]
        return tokens + (pos if ids is None else pos[0, ids])

    def _encode(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(patch_tokens.shape[0], -1, -1), patch_tokens), dim=1)
        return self._blocks(x)

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm1(x) if self.final_norm else x

    def forward_views(self, x1: torch.Tensor, x2: torch.Tensor,
                      noise: torch.Tensor | None = None) -> tuple:  # fmt: skip
        """``(z1, z2, masks)``: the visible tokens of two views masked by ``(B, L)`` noise (drawn
        if None), encoded (cls first)."""
        batch = x1.shape[0]
        noise = torch.rand(batch, self.num_patches, device=x1.device) if noise is None else noise
        masks = disjoint_masks_from_noise(noise, self.mask_ratio)
        # Only the visible patches are embedded: a quarter of the work at r = 0.75.
        v1, v2 = self._embed_patches(x1, masks.ids_keep1), self._embed_patches(x2, masks.ids_keep2)
        # One pass for both views: the encoder has no cross-sample layer.
        z1, z2 = self._encode(torch.cat([v1, v2])).split(batch)
        return z1, z2, masks

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + L, C)`` final-normed tokens of every patch."""
        return self._encode(self._embed_patches(x))
