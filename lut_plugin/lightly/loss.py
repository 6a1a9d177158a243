"""L_BC as a lightly-style loss module."""

from __future__ import annotations

import torch
from torch import nn

from lut_plugin.core import broader_context_loss


class BroaderContextLoss(nn.Module):
    """``1/2 [(2 - 2 cos(p1, t2)) + (2 - 2 cos(p2, t1))]``, batch-averaged; targets detached."""

    def forward(
        self, p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
    ) -> torch.Tensor:
        """Student predictions ``p1, p2`` against teacher projections ``t1, t2``."""
        return broader_context_loss(p1, p2, t1, t2)
