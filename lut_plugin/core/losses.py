"""The broader-context loss L_BC (METHOD.md step 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def negative_cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's ``2 - 2 * cos(pred, target)``, averaged over the batch; the target is detached.

    Args:
        pred (torch.Tensor): ``(B, D)`` student predictions.
        target (torch.Tensor): ``(B, D)`` teacher targets.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    cos = (F.normalize(pred, dim=-1) * F.normalize(target.detach(), dim=-1)).sum(dim=-1)
    return (2 - 2 * cos).mean()


class BroaderContextLoss(nn.Module):
    """Cross-view L_BC ``1/2 [ncos(p1, t2) + ncos(p2, t1)]``, unweighted (the algorithm applies
    ``w_bc``); ``forward(p1, p2, t1, t2)`` takes ``(B, D)`` predictions and targets."""

    def forward(
        self, p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
    ) -> torch.Tensor:
        return 0.5 * (negative_cosine_loss(p1, t2) + negative_cosine_loss(p2, t1))
