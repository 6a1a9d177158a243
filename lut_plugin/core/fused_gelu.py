"""A Linear layer and its GELU as one matrix-product call (for the gradient-free teacher)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearGELU(nn.Linear):
    """``gelu_tanh(x @ W.T + b)``: without autograd on CUDA one cuBLASLt call with a GELU
    epilogue (docs/training.md, measured in docs/results/speed.md); tanh GELU on every path.

    Args: as ``nn.Linear``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if x.is_cuda and self.bias is not None and not needs_grad:
            dtype = (
                torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else x.dtype
            )
            return addmm_gelu(x.to(dtype), self.weight.to(dtype), self.bias.to(dtype))
        return F.gelu(super().forward(x), approximate="tanh")


def addmm_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``gelu(x @ weight.T + bias)`` as one ``torch._addmm_activation`` call (no derivative;
    tanh GELU on CUDA, exact GELU on the CPU)."""
    out = torch._addmm_activation(bias, x.reshape(-1, x.shape[-1]), weight.t(), use_gelu=True)
    return out.reshape(*x.shape[:-1], -1)


def fuse_linear_gelu(module: nn.Module) -> int:
    """Replace each ``nn.Linear, nn.GELU`` pair of an ``nn.Sequential`` by a :class:`LinearGELU`
    with the same parameters and an ``nn.Identity`` (same state dict); returns the count.

    Args:
        module (nn.Module): Changed in place.
    """
    count = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            linear, act = seq._modules[first], seq._modules[second]
            if not isinstance(linear, nn.Linear) or not isinstance(act, nn.GELU):
                continue
            fused = LinearGELU(linear.in_features, linear.out_features, device="meta")
            fused.weight, fused.bias = linear.weight, linear.bias
            seq._modules[first], seq._modules[second] = fused, nn.Identity()
            count += 1
    return count
