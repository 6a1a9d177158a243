"""Two disjoint MAE masks drawn from a single noise tensor (METHOD.md step 2)."""

from __future__ import annotations

from typing import NamedTuple

import torch


def keep_count(num_patches: int, mask_ratio: float) -> int:
    """Visible patches per view, ``int(L * (1 - r))`` as in MAE, for ``L = num_patches`` and
    ``r = mask_ratio``; a ``ValueError`` if ``r`` is outside ``[0.5, 1)`` (two visible sets
    of ``(1 - r) L`` patches cannot be disjoint when ``r < 0.5``) or no patch stays visible."""
    if not 0.5 <= mask_ratio < 1.0:
        raise ValueError(
            f"mask_ratio must satisfy 0.5 <= mask_ratio < 1 so that the two views' "
            f"visible patch sets are disjoint and non-empty, got {mask_ratio}"
        )
    keep = int(num_patches * (1 - mask_ratio))
    if keep < 1:
        raise ValueError(
            f"mask_ratio={mask_ratio} leaves no visible patch out of {num_patches} "
            f"(int({num_patches} * (1 - {mask_ratio})) = 0); lower the ratio or use "
            f"more patches"
        )
    return keep


class DisjointMasks(NamedTuple):
    """Indices and binary masks of the two views: ``mask*`` in MAE's convention (1 = removed,
    0 = visible); ``ids_restore*`` undo the order in which each view's visible tokens come
    first, as mmpretrain's ``MAEPretrainDecoder`` expects."""

    ids_keep1: torch.Tensor
    ids_keep2: torch.Tensor
    mask1: torch.Tensor
    mask2: torch.Tensor
    ids_restore1: torch.Tensor
    ids_restore2: torch.Tensor


def _mask_from_keep(ids_keep: torch.Tensor, num_patches: int) -> torch.Tensor:
    mask = torch.ones(ids_keep.shape[0], num_patches, device=ids_keep.device)
    return mask.scatter_(1, ids_keep, 0.0)


def disjoint_masks_from_noise(noise: torch.Tensor, mask_ratio: float) -> DisjointMasks:
    """Split one noise draw into two disjoint visible sets.

    With ``pi = argsort(noise)`` and ``keep = int(L * (1 - r))``, view 1 keeps
    ``pi[:keep]`` and view 2 keeps ``pi[keep:2 * keep]``.

    Args:
        noise (torch.Tensor): ``(B, L)`` noise, one row per sample.
        mask_ratio (float): Fraction of patches removed from each view.

    Returns:
        DisjointMasks: Keep indices, binary masks and restore indices of both views.
    """
    if noise.dim() != 2:
        raise ValueError(f"noise must have shape (B, L), got {tuple(noise.shape)}")
    num_patches = noise.shape[1]
    keep = keep_count(num_patches, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_keep1 = ids_shuffle[:, :keep]
    ids_keep2 = ids_shuffle[:, keep : 2 * keep]
    # View 2's order puts its own visible tokens first, so a decoder could use it too.
    order2 = torch.cat([ids_keep2, ids_shuffle[:, :keep], ids_shuffle[:, 2 * keep :]], dim=1)
    return DisjointMasks(
        ids_keep1=ids_keep1,
        ids_keep2=ids_keep2,
        mask1=_mask_from_keep(ids_keep1, num_patches),
        mask2=_mask_from_keep(ids_keep2, num_patches),
        ids_restore1=torch.argsort(ids_shuffle, dim=1),
        ids_restore2=torch.argsort(order2, dim=1),
    )


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``tokens[b, ids[b]]`` for every sample: ``(B, L, D)`` tokens, ``(B, K)`` indices ->
    ``(B, K, D)``."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
