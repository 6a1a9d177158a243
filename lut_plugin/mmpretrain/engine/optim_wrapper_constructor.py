"""mmengine's default optimiser constructor, quiet about the frozen momentum teacher."""

from __future__ import annotations

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SkipFrozenOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that names each frozen submodule once.

    With a ``paramwise_cfg``, mmengine leaves every parameter that does not require
    gradients out of the optimiser with one warning each: about 150 warnings for the
    momentum teacher of a ViT-B LUT at the start of every run. Here a submodule none of
    whose parameters requires gradients is left out as a whole, with one log line; the
    parameter groups are the same.

    Args:
        optim_wrapper_cfg (dict): As ``DefaultOptimWrapperConstructor``.
        paramwise_cfg (dict, optional): As ``DefaultOptimWrapperConstructor``.
    """

    def add_params(
        self, params: list[dict], module: nn.Module, prefix: str = "", is_dcn_module=None
    ) -> None:
        """mmengine's ``add_params``, skipping a frozen submodule with one log line."""
        if prefix and not any(p.requires_grad for p in module.parameters()):
            count = sum(1 for _ in module.parameters())
            if count:
                print_log(f"{prefix}: {count} frozen tensors, not optimised", "current")
                return
        super().add_params(params, module, prefix, is_dcn_module)
