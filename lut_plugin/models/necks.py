"""LUT's projector / predictor MLP as an mmpretrain neck."""

from __future__ import annotations

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from lut_plugin.core import ProjectionMLP


@MODELS.register_module()
class LUTProjectionMLP(BaseModule):
    """Core's ``ProjectionMLP`` (at ``mlp``) under mmpretrain's argument names.

    Args:
        in_channels (int): Input width (the encoder width D).
        hid_channels (int): Hidden width. Defaults to 4096.
        out_channels (int, optional): Output width. Defaults to ``in_channels``.
        num_layers (int): Number of linear layers. Defaults to 2.
        norm (str): ``'bn'``, ``'syncbn'``, ``'ln'`` or ``'none'``. Defaults to ``'bn'``.
        act (str): ``'relu'`` or ``'gelu'``. Defaults to ``'relu'``.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def __init__(self, in_channels: int, hid_channels: int = 4096, out_channels: int | None = None,
                 num_layers: int = 2, norm: str = "bn", act: str = "relu",
                 init_cfg: dict | list[dict] | None = None) -> None:  # fmt: skip
        super().__init__(init_cfg=init_cfg)
        self.mlp = ProjectionMLP(in_channels, hid_channels, out_channels, num_layers, norm, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
