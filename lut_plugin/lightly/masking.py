"""Two disjoint token masks in lightly's ``random_token_mask`` convention."""

from __future__ import annotations

import torch

from lut_plugin.core import disjoint_masks_from_noise


def disjoint_token_masks(
    size: tuple[int, int],
    mask_ratio: float = 0.75,
    device: torch.device | str | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``idx_keep1``, ``idx_keep2`` (the class token first) and view 1's ``idx_mask1``.

    As ``lightly.models.utils.random_token_mask``, ``size = (batch, 1 + num_patches)`` counts
    the class token at index 0, which both views keep, and indices are offset by 1. ``noise``
    ``(batch, num_patches)`` is drawn with ``torch.rand`` on ``device`` when omitted.
    """
    batch, seq_len = size
    if noise is None:
        noise = torch.rand(batch, seq_len - 1, device=device)
    m = disjoint_masks_from_noise(noise, mask_ratio)
    cls = torch.zeros(batch, 1, dtype=torch.long, device=noise.device)
    idx_mask1 = (m.mask1 > 0).nonzero()[:, 1].view(batch, -1) + 1
    return (
        torch.cat([cls, m.ids_keep1 + 1], dim=1),
        torch.cat([cls, m.ids_keep2 + 1], dim=1),
        idx_mask1,
    )
