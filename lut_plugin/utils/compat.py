"""Runtime fixes that let upstream OpenMMLab configs run on the pinned stack.

Every function here is called by ``tools/train.py`` / ``tools/test.py``;
:func:`register_checkpoint_safe_globals` also runs on ``import lut_plugin``.

This module only imports torch, numpy and mmengine so that the launchers can load it
even when the rest of the package does not import.
"""

from __future__ import annotations

import logging
import os
import os.path as osp
import pickle
from collections.abc import Iterable, MutableMapping
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

__all__ = [
    "register_checkpoint_safe_globals",
    "checkpoint_safe_globals",
    "strip_collate_fn_scope",
    "amp_fallback_without_gpu",
    "disable_persistent_workers_without_workers",
    "dist_fallback_without_gpu",
    "init_cpu_distributed",
    "check_checkpoint_file",
    "accelerator_available",
]

_LOGGER = "current"

# ---------------------------------------------------------------------------
# (a) torch >= 2.6 loads checkpoints with ``weights_only=True``
# ---------------------------------------------------------------------------

# The methods HistoryBuffer pickles by reference (``HistoryBuffer.__getstate__`` stores
# its class-level ``_statistics_methods`` dict, whose values are these functions).
_HISTORY_BUFFER_METHODS = ("min", "max", "current", "mean")
# numpy arrays/scalars of these types may be in a checkpoint (HistoryBuffer keeps
# float64 values and int64 counts; dataset metainfo may hold uint8 palettes, ...).
_NUMERIC_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` inside mmengine checkpoints.

    Pickle protocol 2 stores a method such as ``HistoryBuffer.mean`` as
    ``getattr(HistoryBuffer, 'mean')``. Allow-listing the real ``getattr`` would let a
    checkpoint reach any attribute of any allowed object, so only these lookups pass.

    Args:
        obj (Any): The object the checkpoint asks an attribute of.
        name (str): The attribute name.

    Returns:
        Any: ``getattr(obj, name)`` for the statistics methods of ``HistoryBuffer``.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f"checkpoint asks for getattr({getattr(obj, '__name__', type(obj).__name__)}, "
        f"{name!r}); only HistoryBuffer.{{{', '.join(_HISTORY_BUFFER_METHODS)}}} are allowed"
    )


def checkpoint_safe_globals() -> list[Any]:
    """The globals an mmengine checkpoint holds besides tensors and builtins.

    Found by saving a checkpoint with mmengine 0.10.7's ``Runner`` (numpy 2) and
    listing ``torch.serialization.get_unsafe_globals_in_checkpoint``:
    the message hub's ``HistoryBuffer`` (numpy arrays inside, statistics methods
    pickled via ``getattr``) and numpy scalars in ``runtime_info`` (e.g. ``eta``).
    The numpy 1.x module names (``numpy.core.multiarray``) are added so that
    checkpoints written with numpy 1 load too.

    Returns:
        list: Entries for ``torch.serialization.add_safe_globals``: objects, or
        ``(object, "module.name")`` pairs where the pickled name differs.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]

    entries: list[Any] = [HistoryBuffer, np.ndarray, np.dtype]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        entries.append((multiarray._reconstruct, f"{module}._reconstruct"))
        entries.append((multiarray.scalar, f"{module}.scalar"))
    # A pickled dtype is rebuilt by ``BUILD`` on an instance of its class
    # (``numpy.dtypes.Float64DType``, ...), which torch checks against the allow-list.
    entries.extend(type(np.dtype(name)) for name in _NUMERIC_DTYPES)
    entries.append((_history_buffer_getattr, "builtins.getattr"))
    return entries


def register_checkpoint_safe_globals() -> bool:
    """Let ``torch.load(weights_only=True)`` read mmengine checkpoints.

    mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 then
    refuses its checkpoints (``--resume``, ``load_from``, ``tools/test.py``) with
    ``pickle.UnpicklingError``. This allow-lists exactly the extra globals of
    :func:`checkpoint_safe_globals`, keeping the weights-only loader on. Idempotent.

    Returns:
        bool: False when this torch has no ``add_safe_globals`` (torch < 2.4, whose
        ``torch.load`` does not default to weights-only), else True.
    """
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:
        return False
    add(checkpoint_safe_globals())
    return True


# ---------------------------------------------------------------------------
# (b) ``_scope_`` inside collate_fn dicts of configs inheriting ``mmpretrain::``
# ---------------------------------------------------------------------------

DATALOADER_KEYS = ("train_dataloader", "val_dataloader", "test_dataloader")


def strip_collate_fn_scope(cfg: MutableMapping) -> list[str]:
    """Remove ``_scope_`` from the ``collate_fn`` dicts of the three dataloaders.

    A config that inherits ``mmpretrain::...`` gets ``_scope_='mmpretrain'`` added to
    every dict with a ``type``; mmengine passes all ``collate_fn`` keys but ``type`` to
    the function, so ``default_collate`` fails with
    ``TypeError: ... unexpected keyword argument '_scope_'``. The function is looked
    up under the config's ``default_scope`` and mmengine's registry either way.

    Args:
        cfg (MutableMapping): The config, changed in place.

    Returns:
        list[str]: The dataloader keys that were changed.
    """
    changed = []
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if not isinstance(loader, MutableMapping):
            continue
        collate = loader.get("collate_fn")
        if isinstance(collate, MutableMapping) and "_scope_" in collate:
            collate.pop("_scope_")
            changed.append(key)
    return changed


def disable_persistent_workers_without_workers(cfg: MutableMapping) -> list[str]:
    """Set ``persistent_workers=False`` where ``num_workers`` is 0.

    torch's ``DataLoader`` raises for ``persistent_workers=True`` without workers, and
    upstream configs (and the launchers' defaults) set it to True.

    Args:
        cfg (MutableMapping): The config, changed in place.

    Returns:
        list[str]: The dataloader keys that were changed.
    """
    changed = []
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if not isinstance(loader, MutableMapping):
            continue
        if loader.get("persistent_workers") and loader.get("num_workers", 0) == 0:
            loader["persistent_workers"] = False
            changed.append(key)
    return changed


# ---------------------------------------------------------------------------
# (c) AMP / NCCL on a machine without a GPU
# ---------------------------------------------------------------------------

AMP_ONLY_KEYS = ("loss_scale", "dtype", "use_fsdp")


def accelerator_available() -> bool:
    """Whether mmengine's ``AmpOptimWrapper`` can run here (CUDA, NPU, MLU or MUSA).

    Returns:
        bool: True if an accelerator is available.
    """
    from mmengine.device import (
        is_cuda_available,
        is_mlu_available,
        is_musa_available,
        is_npu_available,
    )

    return bool(
        is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()
    )


def _is_amp_type(type_: Any) -> bool:
    if isinstance(type_, str):
        return type_.split(".")[-1] == "AmpOptimWrapper"
    return getattr(type_, "__name__", None) == "AmpOptimWrapper"


def _optim_wrapper_cfgs(optim_wrapper: MutableMapping) -> Iterable[MutableMapping]:
    """The single wrapper config, or each wrapper of a multi-optimizer config."""
    if "type" in optim_wrapper or "optimizer" in optim_wrapper:
        yield optim_wrapper
        return
    for value in optim_wrapper.values():
        if isinstance(value, MutableMapping) and "type" in value:
            yield value


def amp_fallback_without_gpu(cfg: MutableMapping, has_accelerator: bool | None = None) -> bool:
    """Replace ``AmpOptimWrapper`` by ``OptimWrapper`` when there is no accelerator.

    mmengine's ``AmpOptimWrapper`` asserts a GPU (or NPU/MLU/MUSA). Upstream configs
    (e.g. the MAE ones) use it, and ``--amp`` asks for it. Without an accelerator the
    run goes on in float32 with a one-line warning; the AMP-only keys
    (``loss_scale``, ``dtype``, ``use_fsdp``) are dropped. ``test_cfg.fp16`` and
    ``val_cfg.fp16`` are turned off the same way.

    Args:
        cfg (MutableMapping): The config, changed in place.
        has_accelerator (bool, optional): Override the detection (for tests).

    Returns:
        bool: True if something was changed.
    """
    if has_accelerator is None:
        has_accelerator = accelerator_available()
    if has_accelerator:
        return False
    changed = False
    optim_wrapper = cfg.get("optim_wrapper")
    if isinstance(optim_wrapper, MutableMapping):
        for wrapper in _optim_wrapper_cfgs(optim_wrapper):
            if _is_amp_type(wrapper.get("type")):
                wrapper["type"] = "OptimWrapper"
                for key in AMP_ONLY_KEYS:
                    wrapper.pop(key, None)
                changed = True
        if changed:
            print_log(
                "No GPU found: AmpOptimWrapper replaced by OptimWrapper, training in "
                "float32 (loss_scale/dtype dropped).",
                logger=_LOGGER,
                level=logging.WARNING,
            )
    for key in ("val_cfg", "test_cfg"):
        loop_cfg = cfg.get(key)
        if isinstance(loop_cfg, MutableMapping) and loop_cfg.get("fp16"):
            loop_cfg["fp16"] = False
            changed = True
            print_log(
                f"No GPU found: {key}.fp16 turned off, evaluating in float32.",
                logger=_LOGGER,
                level=logging.WARNING,
            )
    return changed


_SYNC_BN_TYPES = ("SyncBN", "MMSyncBN", "SyncBatchNorm", "nn.SyncBatchNorm")


def _replace_sync_bn(node: Any) -> int:
    count = 0
    if isinstance(node, MutableMapping):
        type_ = node.get("type")
        if isinstance(type_, str) and type_.split(".")[-1] in _SYNC_BN_TYPES:
            node["type"] = "BN"
            count += 1
        # Norms chosen by name, as in LUTProjectionMLP(norm='syncbn').
        if str(node.get("norm", "")).lower() == "syncbn":
            node["norm"] = "bn"
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, list | tuple):
        for value in node:
            count += _replace_sync_bn(value)
    return count


def dist_fallback_without_gpu(cfg: MutableMapping, has_accelerator: bool | None = None) -> bool:
    """Make a distributed launch work on CPUs: ``gloo`` instead of ``nccl``, BN for SyncBN.

    NCCL needs GPUs and torch's ``SyncBatchNorm`` has no CPU kernel; DDP takes no
    ``device_ids`` for a CPU model. Only applies
    when ``cfg.launcher`` is not ``'none'`` (mmengine itself turns SyncBN into BN for
    single-process runs).

    Args:
        cfg (MutableMapping): The config, changed in place.
        has_accelerator (bool, optional): Override the detection (for tests).

    Returns:
        bool: True if something was changed.
    """
    if cfg.get("launcher", "none") == "none":
        return False
    if has_accelerator is None:
        has_accelerator = torch.cuda.is_available()
    if has_accelerator:
        return False
    changed = False
    env_cfg = cfg.get("env_cfg")
    if isinstance(env_cfg, MutableMapping):
        dist_cfg = env_cfg.get("dist_cfg")
        if isinstance(dist_cfg, MutableMapping) and dist_cfg.get("backend", "nccl") == "nccl":
            dist_cfg["backend"] = "gloo"
            changed = True
    n_bn = _replace_sync_bn(cfg.get("model"))
    # mmengine passes device_ids=[LOCAL_RANK] to DDP, which DDP refuses for CPU modules.
    wrapper = cfg.get("model_wrapper_cfg") or {
        "type": "MMDistributedDataParallel",
        "broadcast_buffers": False,
        "find_unused_parameters": cfg.get("find_unused_parameters", False),
    }
    if "device_ids" not in wrapper:
        wrapper["device_ids"] = None
        cfg["model_wrapper_cfg"] = wrapper
        changed = True
    if changed or n_bn:
        print_log(
            f"No GPU found: distributed backend gloo on CPU, {n_bn} SyncBN layer config(s) "
            "set to BN.",
            logger=_LOGGER,
            level=logging.WARNING,
        )
    return changed or bool(n_bn)


def init_cpu_distributed(cfg: MutableMapping) -> bool:
    """Start the ``gloo`` process group of a ``--launcher pytorch`` run without GPUs.

    mmengine's own ``init_dist`` calls ``torch.cuda.set_device`` and so fails on a
    CPU-only machine; when the group already exists, mmengine uses it. Call after
    :func:`dist_fallback_without_gpu` and before the runner is built.

    Args:
        cfg (MutableMapping): The final config.

    Returns:
        bool: True if this call started the process group.
    """
    import torch.distributed as torch_dist

    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return False
    if not torch_dist.is_available() or torch_dist.is_initialized():
        return False
    dist_cfg = dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {})
    backend = dist_cfg.pop("backend", "gloo")
    torch_dist.init_process_group(backend=backend, **dist_cfg)
    return True


# ---------------------------------------------------------------------------
# (d) missing checkpoint files
# ---------------------------------------------------------------------------


def check_checkpoint_file(path: str | None, what: str = "checkpoint") -> None:
    """Fail early, naming the file, when a local checkpoint path does not exist.

    Remote paths (``http://``, ``s3://``, ``open-mmlab://``, ...) are left to mmengine.

    Args:
        path (str, optional): The path given on the command line; ``None`` or ``'auto'``
            is not checked.
        what (str): What the file is for, used in the message.

    Raises:
        FileNotFoundError: If ``path`` is local and is not a file.
    """
    if path is None or path == "auto" or "://" in path:
        return
    if not osp.isfile(path):
        where = "is a directory, not a file" if osp.isdir(path) else "does not exist"
        raise FileNotFoundError(
            f"{what} file '{path}' {where} (absolute: '{os.path.abspath(path)}')."
        )
