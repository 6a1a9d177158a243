"""The broader-context loss L_BC (METHOD.md step 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class BroaderContextLoss(nn.Module):
    """Cross-view BYOL loss between student predictions and teacher targets.

    ``L_BC = 1/2 [(2 - 2 cos(p1, t2)) + (2 - 2 cos(p2, t1))]``, each term averaged over the
    batch; the targets get no gradient. Unweighted: the algorithm applies ``w_bc``.
    Registered in mmpretrain's ``MODELS`` by :mod:`lut_plugin.models`.
    """

    def forward(
        self, p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
    ) -> torch.Tensor:
        """Student predictions ``p1, p2`` against teacher projections ``t1, t2``, ``(B, D)``."""
        return 0.5 * (negative_cosine_loss(p1, t2) + negative_cosine_loss(p2, t1))
