"""The paper's attention analyses of mmpretrain ViTs: per-head attention maps of a query
patch (supplementary Figs. A and B) and the mean attention distance."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def capture_attention(encoder: nn.Module):
    """Yield a list that a forward pass fills with every block's ``(B, heads, N, N)``
    attention probabilities, recomputed from the input of the block's ``attn`` (an mmpretrain
    ``MultiheadAttention`` with a fused ``qkv``), so the fused kernel stays in place."""
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


def mean_attention_distance(attn: torch.Tensor, grid: tuple[int, int], patch_size: int,
                            num_extra_tokens: int = 1) -> torch.Tensor:  # fmt: skip
    """``(heads,)`` attention-weighted distance (pixels) between query and key patches,
    averaged over the queries and the batch of ``(B, heads, N, N)`` probabilities ``attn``
    (``N = num_extra_tokens + H * W``; the extra (cls) tokens are dropped and each query's
    weights renormalised) on an ``(H, W)`` ``grid`` of ``patch_size`` pixels."""
    a = attn[..., num_extra_tokens:, num_extra_tokens:]
    if a.shape[-1] != grid[0] * grid[1]:
        raise ValueError(f"attention over {a.shape[-1]} patches does not fit a {grid} grid")
    ys, xs = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], dim=-1).to(a.dtype) * patch_size
    return (a / a.sum(dim=-1, keepdim=True) * torch.cdist(pos, pos)).sum(-1).mean(dim=(0, 2))
