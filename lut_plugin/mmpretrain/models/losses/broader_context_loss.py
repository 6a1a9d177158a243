"""The broader-context loss L_BC as an mmpretrain loss module."""

from __future__ import annotations

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from lut_plugin.core import broader_context_loss


@MODELS.register_module()
class BroaderContextLoss(BaseModule):
    """Cross-view BYOL loss between student predictions and teacher targets.

    ``L_BC = 1/2 [(2 - 2 cos(p1, t2)) + (2 - 2 cos(p2, t1))]``, each term
    averaged over the batch (METHOD.md step 7). Targets get no gradient. The
    weight ``w_bc`` is applied by the algorithm, so the value is unweighted.
    """

    def forward(
        self, p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            p1 (torch.Tensor): Student prediction of view 1, ``(B, D)``.
            p2 (torch.Tensor): Student prediction of view 2, ``(B, D)``.
            t1 (torch.Tensor): Teacher projection of view 1, ``(B, D)``.
            t2 (torch.Tensor): Teacher projection of view 2, ``(B, D)``.

        Returns:
            torch.Tensor: Scalar loss.
        """
        return broader_context_loss(p1, p2, t1, t2)
