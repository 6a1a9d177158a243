"""LUT's projector and predictor under lightly's head names and arguments."""

from __future__ import annotations

from lut_plugin.core import ProjectionMLP


class LUTProjectionHead(ProjectionMLP):
    """Projector ``h``: ``Linear(D, 4096) -> BN -> ReLU -> Linear(4096, D)``, no biases.

    The layers sit at ``layers.{0,1,3}``, as in lightly's ``ProjectionHead``.

    Args:
        input_dim (int): Encoder width D. Defaults to 768.
        hidden_dim (int): Hidden width. Defaults to 4096.
        output_dim (int, optional): Output width. Defaults to ``input_dim``.
        num_layers (int): Linear layers. Defaults to 2.
        norm (str): ``'bn'``, ``'syncbn'``, ``'ln'`` or ``'none'``. Defaults to ``'bn'``.
        act (str): ``'relu'`` or ``'gelu'``. Defaults to ``'relu'``.
    """

    def __init__(
        self,
        input_dim: int = 768,
        hidden_dim: int = 4096,
        output_dim: int | None = None,
        num_layers: int = 2,
        norm: str = "bn",
        act: str = "relu",
    ) -> None:
        super().__init__(input_dim, hidden_dim, output_dim, num_layers, norm, act)


class LUTPredictionHead(LUTProjectionHead):
    """Predictor ``q``: same MLP as the projector, applied on top of it."""
