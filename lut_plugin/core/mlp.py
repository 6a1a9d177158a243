"""The projector / predictor MLP of LUT (METHOD.md step 5)."""

from __future__ import annotations

import torch
from torch import nn

NORMS = {"bn": nn.BatchNorm1d, "syncbn": nn.SyncBatchNorm, "ln": nn.LayerNorm, "none": None}
ACTS = {"relu": nn.ReLU, "gelu": nn.GELU}


class ProjectionMLP(nn.Module):
    """``Linear -> norm -> act`` repeated ``depth - 1`` times, then ``Linear``.

    The default is LUT's head: ``Linear(D, 4096, bias=False) -> BN -> ReLU ->
    Linear(4096, D, bias=False)``, its layers at ``layers.{0,1,3}`` as in the reference
    implementation and lightly's ``ProjectionHead``.

    Args:
        in_dim (int): Input width.
        hidden_dim (int): Width of the hidden layers. Defaults to 4096.
        out_dim (int, optional): Output width. Defaults to ``in_dim``.
        depth (int): Number of linear layers, at least 1. Defaults to 2.
        norm (str): ``'bn'``, ``'syncbn'``, ``'ln'`` or ``'none'``. Defaults to ``'bn'``.
        act (str): ``'relu'`` or ``'gelu'``. Defaults to ``'relu'``.
        bias (bool): Whether the linear layers have a bias. Defaults to False.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 4096,
        out_dim: int | None = None,
        depth: int = 2,
        norm: str = "bn",
        act: str = "relu",
        bias: bool = False,
    ) -> None:
        super().__init__()
        norm, act = str(norm).lower(), str(act).lower()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r} for the projection MLP; one of {[*NORMS]}")
        if act not in ACTS:
            raise ValueError(f"unknown act {act!r} for the projection MLP; one of {[*ACTS]}")
        if depth < 1:
            raise ValueError(f"projection MLP depth must be >= 1, got {depth}")
        out_dim = in_dim if out_dim is None else out_dim
        if min(in_dim, hidden_dim, out_dim) < 1:
            raise ValueError(
                f"projection MLP widths must be positive: {in_dim, hidden_dim, out_dim}"
            )
        layers = []
        for _ in range(depth - 1):
            layers.append(nn.Linear(in_dim, hidden_dim, bias=bias))
            layers += [NORMS[norm](hidden_dim)] if NORMS[norm] else []
            layers.append(ACTS[act]())
            in_dim = hidden_dim
        self.layers = nn.Sequential(*layers, nn.Linear(in_dim, out_dim, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` features to ``(B, out_dim)``."""
        return self.layers(x)
