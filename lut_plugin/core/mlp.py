"""The projector / predictor MLP of LUT (METHOD.md step 5)."""

from __future__ import annotations

import torch
from torch import nn

NORMS = {"bn": nn.BatchNorm1d, "syncbn": nn.SyncBatchNorm, "ln": nn.LayerNorm, "none": None}
ACTS = {"relu": nn.ReLU, "gelu": nn.GELU}


class ProjectionMLP(nn.Module):
    """``(Linear, norm, act) * (depth - 1), Linear``, without biases; the defaults are LUT's head.

    Args:
        in_dim (int): Input width.
        hidden_dim (int): Width of the hidden layers. Defaults to 4096.
        out_dim (int, optional): Output width. Defaults to ``in_dim``.
        depth (int): Number of linear layers, at least 1. Defaults to 2.
        norm (str): ``'bn'``, ``'syncbn'``, ``'ln'`` or ``'none'``. Defaults to ``'bn'``.
        act (str): ``'relu'`` or ``'gelu'``. Defaults to ``'relu'``.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 4096, out_dim: int | None = None,
                 depth: int = 2, norm: str = "bn", act: str = "relu") -> None:  # fmt: skip
        super().__init__()
        norm, act, out_dim = str(norm).lower(), str(act).lower(), out_dim or in_dim
        for name, value, allowed in (("norm", norm, NORMS), ("act", act, ACTS)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r} for the MLP; one of {[*allowed]}")
        if depth < 1:
            raise ValueError(f"projection MLP depth must be >= 1, got {depth}")
        layers = []
        for _ in range(depth - 1):
            layers.append(nn.Linear(in_dim, hidden_dim, bias=False))
            layers += [NORMS[norm](hidden_dim)] if NORMS[norm] else []
            layers.append(ACTS[act]())
            in_dim = hidden_dim
        self.layers = nn.Sequential(*layers, nn.Linear(in_dim, out_dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
