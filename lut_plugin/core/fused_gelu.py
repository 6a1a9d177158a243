"""A Linear layer and its GELU as one matrix-product call (for the gradient-free teacher)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearGELU(nn.Linear):
    """``gelu_tanh(x @ W.T + b)``: a ``Linear`` followed by GELU's tanh approximation.

    On CUDA, when no gradient is needed (the momentum teacher), it is one cuBLASLt call whose
    epilogue adds the bias and applies the GELU (``torch._addmm_activation``, which inductor
    keeps as it is), so the 4x-wide hidden activation of a ViT MLP is written once instead of
    being written, read back and written again by a separate GELU kernel: the largest
    non-matrix-product kernel of a compiled ViT-B LUT step (11.7 of 236 ms on an H100).
    That epilogue computes the tanh approximation of GELU, so every path of this layer does:
    at most 4.7e-4 from the exact GELU, below bf16's rounding of the activations. Under
    autocast the call runs in the autocast dtype, as the ``Linear`` would.

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
    """``gelu(x @ weight.T + bias)`` for ``x`` of any leading shape, as one
    ``torch._addmm_activation`` call (no derivative; GELU's tanh approximation on CUDA, the
    exact GELU on the CPU)."""
    out = torch._addmm_activation(bias, x.reshape(-1, x.shape[-1]), weight.t(), use_gelu=True)
    return out.reshape(*x.shape[:-1], -1)


def fuse_linear_gelu(module: nn.Module) -> int:
    """Fuse each ``nn.Linear`` followed by ``nn.GELU`` inside an ``nn.Sequential`` of ``module``.

    The pair becomes a :class:`LinearGELU` holding the same parameters, then an
    ``nn.Identity``: the state-dict keys and tensors stay the same (an EMA update or a
    checkpoint sees no difference); the GELU becomes its tanh approximation. mmcv's ``FFN``
    (mmpretrain's ViT blocks) has this form.

    Args:
        module (nn.Module): Changed in place.

    Returns:
        int: How many pairs were fused.
    """
    count = 0
    for seq in list(module.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
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
