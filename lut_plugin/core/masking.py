"""Two disjoint MAE masks drawn from a single noise tensor (METHOD.md step 2)."""

from __future__ import annotations

from typing import NamedTuple

import torch


def keep_count(num_patches: int, mask_ratio: float) -> int:
    """Visible patches per view, ``int(L * (1 - r))`` as in MAE; a ``ValueError`` unless the
    two views' visible sets can be disjoint (``0.5 <= r < 1``) and non-empty."""
    if not 0.5 <= mask_ratio < 1.0:
        raise ValueError(
            f"mask_ratio must satisfy 0.5 <= mask_ratio < 1 so that the two views' "
            f"visible patch sets are disjoint and non-empty, got {mask_ratio}"
        )
    keep = int(num_patches * (1 - mask_ratio))
    if keep < 1:
        raise ValueError(
            f"mask_ratio={mask_ratio} leaves no visible patch out of {num_patches} "
            f"(int({num_patches} * (1 - {mask_ratio})) = 0); lower the ratio or use more patches"
        )
    return keep


class DisjointMasks(NamedTuple):
    """Both views' keep indices, ``(B, L)`` masks (1 = removed, as MAE) and view 1's restore
    indices for ``MAEPretrainDecoder`` (only view 1 is reconstructed)."""

    ids_keep1: torch.Tensor
    ids_keep2: torch.Tensor
    mask1: torch.Tensor
    mask2: torch.Tensor
    ids_restore1: torch.Tensor


def disjoint_masks_from_noise(noise: torch.Tensor, mask_ratio: float) -> DisjointMasks:
    """View 1 keeps ``argsort(noise)[:keep]``, view 2 the next ``keep`` patches.

    Args:
        noise (torch.Tensor): ``(B, L)`` noise, one row per sample.
        mask_ratio (float): Fraction of patches removed from each view.
    """
    batch, num_patches = noise.shape
    keep = keep_count(num_patches, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_keep1, ids_keep2 = ids_shuffle[:, :keep], ids_shuffle[:, keep : 2 * keep]
    ones = torch.ones(batch, num_patches, device=noise.device)
    return DisjointMasks(
        ids_keep1,
        ids_keep2,
        ones.scatter(1, ids_keep1, 0.0),
        ones.scatter(1, ids_keep2, 0.0),
        torch.argsort(ids_shuffle, dim=1),
    )


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``tokens[b, ids[b]]``: ``(B, L, D)`` tokens, ``(B, K)`` indices -> ``(B, K, D)``."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
