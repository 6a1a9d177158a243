"""Analyses the paper shows, for any mmpretrain ViT encoder (plain PyTorch on its outputs).

- per-head attention maps of a query patch (supplementary Figs. A and B),
- mean attention distance per layer and head,
- singular value spectrum of features.

``tools/analysis/*.py`` turn these into figures for one or several checkpoints.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def capture_attention(encoder: nn.Module):
    """Record every block's attention probabilities during a forward pass.

    Works for mmpretrain ``VisionTransformer``-style encoders (``MAEViT``,
    ``LUTViT``...) whose blocks hold a ``MultiheadAttention`` at ``.attn``
    with a fused ``qkv`` projection. Probabilities are recomputed from the
    block's attention input, so the fast fused kernel can stay in place.

    Yields:
        list[torch.Tensor]: Filled after the forward pass with one
        ``(B, heads, N, N)`` tensor per block, in block order.
    """
    maps: list[torch.Tensor] = []

    def hook(attn: nn.Module, args: tuple) -> None:
        x = args[0]
        batch, tokens, _ = x.shape
        heads, head_dims = attn.num_heads, attn.head_dims
        qkv = attn.qkv(x).reshape(batch, tokens, 3, heads, head_dims).permute(2, 0, 3, 1, 4)
        q, k = qkv[0], qkv[1]
        maps.append(((q @ k.transpose(-2, -1)) * head_dims**-0.5).softmax(dim=-1).detach())

    handles = [layer.attn.register_forward_pre_hook(hook) for layer in encoder.layers]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def mean_attention_distance(
    attn: torch.Tensor, grid: tuple[int, int], patch_size: int, num_extra_tokens: int = 1
) -> torch.Tensor:
    """Attention-weighted mean distance (pixels) between query and key patches.

    Extra tokens (cls) are dropped and each query's weights over the patches
    renormalised, as in the analyses of ViT/MAE-style models.

    Args:
        attn (torch.Tensor): ``(B, heads, N, N)`` probabilities, ``N = extra + H * W``.
        grid (tuple[int, int]): Patch grid ``(H, W)``.
        patch_size (int): Patch side in pixels.
        num_extra_tokens (int): Leading non-patch tokens. Defaults to 1.

    Returns:
        torch.Tensor: ``(heads,)`` distance averaged over queries and batch.
    """
    h, w = grid
    a = attn[..., num_extra_tokens:, num_extra_tokens:]
    if a.shape[-1] != h * w:
        raise ValueError(f"attention over {a.shape[-1]} patches does not fit a {h}x{w} grid")
    a = a / a.sum(dim=-1, keepdim=True)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], dim=-1).to(a.dtype) * patch_size
    dist = torch.cdist(pos, pos)  # (L, L) pixels
    return (a * dist).sum(dim=-1).mean(dim=(0, 2))


def singular_value_spectrum(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Singular values of a ``(num_samples, dim)`` feature matrix, largest first.

    Features are centred; with ``normalize`` the values are divided by the
    largest one, so that spectra of different models share a scale.

    Args:
        features (torch.Tensor): ``(num_samples, dim)``.
        normalize (bool): Divide by the largest singular value. Defaults to True.

    Returns:
        torch.Tensor: ``(min(num_samples, dim),)`` singular values.
    """
    if features.dim() != 2:
        raise ValueError(f"features must be (num_samples, dim), got {tuple(features.shape)}")
    centred = features.double() - features.double().mean(dim=0, keepdim=True)
    values = torch.linalg.svdvals(centred)
    return values / values[0] if normalize else values


def effective_rank(values: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalised singular values (Roy & Vetterli, 2007)."""
    p = values / values.sum()
    p = p[p > 0]
    return float(math.exp(-(p * p.log()).sum()))
