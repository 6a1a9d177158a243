"""Two disjoint token masks in lightly's ``random_token_mask`` convention."""

from __future__ import annotations

import torch

from lut_plugin.core import disjoint_masks_from_noise


def disjoint_token_masks(
    size: tuple[int, int], mask_ratio: float = 0.75, device: torch.device | str | None = None,
    noise: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """``idx_keep1``, ``idx_keep2`` (the class token first) and view 1's ``idx_mask1``.

    As ``lightly.models.utils.random_token_mask``, ``size = (batch, 1 + num_patches)`` counts
    the class token at index 0, which both views keep, and indices are offset by 1.

    Args:
        size (tuple[int, int]): ``(batch, 1 + num_patches)``.
        mask_ratio (float): Share of masked patches per view. Defaults to 0.75.
        device (torch.device | str, optional): Where ``noise`` is drawn. Defaults to None.
        noise (torch.Tensor, optional): ``(batch, num_patches)``. Defaults to ``torch.rand``.
    """
    batch, seq_len = size
    if noise is None:
        noise = torch.rand(batch, seq_len - 1, device=device)
    m = disjoint_masks_from_noise(noise, mask_ratio)
    cls = torch.zeros(batch, 1, dtype=torch.long, device=noise.device)
    keep1, keep2 = (torch.cat([cls, ids + 1], dim=1) for ids in (m.ids_keep1, m.ids_keep2))
    return keep1, keep2, (m.mask1 > 0).nonzero()[:, 1].view(batch, -1) + 1
