"""mmengine's default optimiser constructor, quiet about frozen submodules."""

from __future__ import annotations

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SkipFrozenOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that names each frozen submodule once.

    With a ``paramwise_cfg``, mmengine leaves each parameter that needs no gradient out of the
    optimiser with one warning each (about 150 for the momentum teacher of a ViT-B LUT). Here
    a submodule none of whose parameters needs gradients is left out whole, with one log line;
    the parameter groups are the same.
    """

    def add_params(
        self, params: list[dict], module: nn.Module, prefix: str = "", is_dcn_module=None
    ) -> None:
        if prefix and not any(p.requires_grad for p in module.parameters()):
            count = sum(1 for _ in module.parameters())
            if count:
                print_log(f"{prefix}: {count} frozen tensors, not optimised", "current")
                return
        super().add_params(params, module, prefix, is_dcn_module)
