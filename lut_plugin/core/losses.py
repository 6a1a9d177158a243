"""The broader-context loss L_BC (METHOD.md step 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss ``2 - 2 * cos(pred, target)``, averaged over the batch.

    The target is detached: gradients flow into the prediction only.

    Args:
        pred (torch.Tensor): ``(B, D)`` student predictions.
        target (torch.Tensor): ``(B, D)`` teacher targets.

    Returns:
        torch.Tensor: Scalar loss in ``[0, 4]``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    cos = (F.normalize(pred, dim=-1) * F.normalize(target.detach(), dim=-1)).sum(dim=-1)
    return (2 - 2 * cos).mean()


def broader_context_loss(
    p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
) -> torch.Tensor:
    """Cross-view loss ``1/2 [(2 - 2 cos(p1, t2)) + (2 - 2 cos(p2, t1))]``.

    Args:
        p1 (torch.Tensor): Student prediction of view 1, ``(B, D)``.
        p2 (torch.Tensor): Student prediction of view 2, ``(B, D)``.
        t1 (torch.Tensor): Teacher projection of view 1, ``(B, D)``.
        t2 (torch.Tensor): Teacher projection of view 2, ``(B, D)``.

    Returns:
        torch.Tensor: Scalar loss (unweighted).
    """
    return 0.5 * (negative_cosine_loss(p1, t2) + negative_cosine_loss(p2, t1))
