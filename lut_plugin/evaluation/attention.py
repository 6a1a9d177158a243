"""Attention maps (supplementary Figs. A and B) and mean attention distance of mmpretrain ViTs."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def capture_attention(encoder: nn.Module):
    """Yield a list that a forward pass fills with each block's ``(B, heads, N, N)``
    attention, recomputed from the input of its ``attn`` (the fused kernel stays in place)."""
    maps: list[torch.Tensor] = []

    def hook(attn: nn.Module, args: tuple) -> None:
        x = args[0]
        qkv = attn.qkv(x).reshape(*x.shape[:2], 3, attn.num_heads, attn.head_dims)
        q, k = qkv.permute(2, 0, 3, 1, 4)[:2]
        maps.append((q @ k.transpose(-2, -1) * attn.head_dims**-0.5).softmax(dim=-1).detach())

    handles = [layer.attn.register_forward_pre_hook(hook) for layer in encoder.layers]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def mean_attention_distance(attn: torch.Tensor, grid: tuple, patch_size: int) -> torch.Tensor:
    """``(heads,)`` attention-weighted query-key distance in pixels, averaged over queries and
    batch, of ``(B, heads, N, N)`` ``attn`` on an ``(H, W)`` ``grid`` (the cls token dropped,
    each query's weights renormalised)."""
    a = attn[..., 1:, 1:]
    if a.shape[-1] != grid[0] * grid[1]:
        raise ValueError(f"attention over {a.shape[-1]} patches does not fit a {grid} grid")
    ys, xs = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], dim=-1).to(a.dtype) * patch_size
    return (a / a.sum(dim=-1, keepdim=True) * torch.cdist(pos, pos)).sum(-1).mean(dim=(0, 2))
