"""Workarounds for the pinned stack, each naming what it works around (one place for all)."""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np
import torch
import torch.distributed as dist
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

from .loading import SAFE_GLOBALS

# torch >= 2.6 loads weights only by default, and mmengine 0.10.7's own torch.load calls
# (resume, load_from, CheckpointHook) refuse mmengine's own checkpoints without this.
torch.serialization.add_safe_globals(SAFE_GLOBALS)


def strip_collate_scope(dataloader: MutableMapping) -> None:
    """Drop ``_scope_`` from a dataloader's ``collate_fn`` config: mmengine 0.10.7 adds it to
    the dicts of ``mmpretrain::`` bases, then passes it on (``TypeError: default_collate() got
    an unexpected keyword argument '_scope_'``)."""
    if isinstance(dataloader.get("collate_fn"), MutableMapping):
        dataloader["collate_fn"].pop("_scope_", None)


def python_drop_rates(model: nn.Module) -> None:
    """Make mmpretrain 1.2's numpy ``DropPath`` rates Python floats (same arithmetic): Dynamo
    branches on numpy scalars as on tensors, splitting each compiled block into graphs."""
    for module in model.modules():
        if isinstance(getattr(module, "drop_prob", None), np.generic):
            module.drop_prob = float(module.drop_prob)


def init_cpu_distributed(cfg: MutableMapping) -> None:
    """Start the process group for ``--launcher pytorch`` without a GPU (mmengine 0.10.7's
    ``init_dist`` calls ``torch.cuda.set_device``), with ``env_cfg.dist_cfg``'s backend."""
    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return
    if dist.is_available() and not dist.is_initialized():
        dist_cfg = dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {})
        dist.init_process_group(backend=dist_cfg.pop("backend", "gloo"), **dist_cfg)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SkipFrozenOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that leaves out a frozen submodule whole, with one
    log line (mmengine warns once per frozen parameter: ~150 for a ViT-B teacher); the
    parameter groups are the same."""

    def add_params(
        self, params: list[dict], module: nn.Module, prefix: str = "", is_dcn_module=None
    ) -> None:
        if prefix and not any(p.requires_grad for p in module.parameters()):
            if count := sum(1 for _ in module.parameters()):
                print_log(f"{prefix}: {count} frozen tensors, not optimised", "current")
                return
        super().add_params(params, module, prefix, is_dcn_module)
