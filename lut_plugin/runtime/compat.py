"""Workarounds for the pinned stack, each naming what it works around (one place for all).

Importing this module registers :data:`~lut_plugin.runtime.loading.SAFE_GLOBALS` with torch.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np
import torch
from torch import nn

from .loading import SAFE_GLOBALS

# torch >= 2.6 loads weights only by default, and mmengine 0.10.7's own torch.load calls
# (resume, load_from, CheckpointHook) do not say otherwise: they refuse mmengine's own
# checkpoints (pickle.UnpicklingError) unless the types those hold are allow-listed.
torch.serialization.add_safe_globals(SAFE_GLOBALS)


def strip_collate_scope(dataloader: MutableMapping) -> None:
    """Drop the ``_scope_`` key from a dataloader's ``collate_fn`` config, in place.

    mmengine 0.10.7 adds ``_scope_`` to every dict of a ``mmpretrain::`` base config and then
    passes it to the collate function: ``TypeError: default_collate() got an unexpected keyword
    argument '_scope_'``.
    """
    if isinstance(dataloader.get("collate_fn"), MutableMapping):
        dataloader["collate_fn"].pop("_scope_", None)


def python_drop_rates(model: nn.Module) -> None:
    """Make numpy drop-path rates Python floats (the arithmetic is unchanged).

    mmpretrain 1.2's ViTs give ``DropPath`` numpy rates (``np.linspace``), on which Dynamo
    branches as on tensors: every compiled block would split into several graphs.
    """
    for module in model.modules():
        if isinstance(getattr(module, "drop_prob", None), np.generic):
            module.drop_prob = float(module.drop_prob)


def plain_param_groups(optimizer: torch.optim.Optimizer) -> None:
    """Make an optimiser's parameter groups plain dicts.

    mmengine 0.10.7's optimiser constructor leaves them as ``ConfigDict``s, which Dynamo cannot
    trace: with mmengine's ``compile`` config key the compiled ``train_step`` stops in the
    optimiser step (``'UserDefinedDictVariable' object has no attribute 'items'``).
    """
    optimizer.param_groups[:] = [dict(group) for group in optimizer.param_groups]


def init_cpu_distributed(cfg: MutableMapping) -> None:
    """Start the process group for ``--launcher pytorch`` on a machine without a GPU.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device``, which fails there; it uses
    a process group that exists already. The backend is the config's ``env_cfg.dist_cfg``
    one (``gloo`` for the CPU).
    """
    import torch.distributed as dist

    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return
    if dist.is_available() and not dist.is_initialized():
        dist_cfg = dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {})
        dist.init_process_group(backend=dist_cfg.pop("backend", "gloo"), **dist_cfg)
