"""Safe checkpoint loading: weights only, a narrow allow-list, strict matching."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import os.path as osp
import pickle
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from mmengine.fileio import get_local_path
from mmengine.fileio.backends import prefix_to_backends
from mmengine.logging import HistoryBuffer, print_log

from lut_plugin.registry import WEIGHT_INITIALIZERS


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, refused as unsafe, or not a dict."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose tensors do not fit the model (keys or shapes)."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``builtins.getattr`` while unpickling: ``HistoryBuffer``'s statistics methods only."""
    if obj is HistoryBuffer and name in ("min", "max", "current", "mean"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed in a checkpoint")


def _safe_globals() -> list[Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    entries: list[Any] = [HistoryBuffer, np.ndarray, np.dtype, argparse.Namespace]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2 and 1 names
        entries += [(multiarray._reconstruct, f"{module}._reconstruct")]
        entries += [(multiarray.scalar, f"{module}.scalar")]
    numeric = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64"
    entries += [type(np.dtype(name)) for name in numeric.split()]  # numpy.dtypes.Float64DType...
    return [*entries, (_history_buffer_getattr, "builtins.getattr")]


#: What an mmengine checkpoint holds besides tensors and builtins (found by saving real
#: checkpoints and listing ``torch.serialization.get_unsafe_globals_in_checkpoint``): the message
#: hub's ``HistoryBuffer`` (numpy arrays, methods via ``getattr``), numpy scalars and dtypes,
#: and ``argparse.Namespace`` (``args`` of timm-style checkpoints).
SAFE_GLOBALS = _safe_globals()

_UNSAFE_LOAD: ContextVar[bool] = ContextVar("unsafe_load", default=False)
_FORCE = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")


@contextlib.contextmanager
def checkpoint_policy(unsafe: bool = False) -> Iterator[None]:
    """Set how checkpoints load inside the block (the runner wraps train/val/test in it).

    Args:
        unsafe (bool): False: weights only, for :func:`load_checkpoint_file` and every other
            ``torch.load`` of the process (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``: mmengine's own
            ``Pretrained`` loads URLs through ``torch.hub``, which unpickles fully). True: full
            unpickling, for files the user trusts. torch's two switches, if the user set them,
            are put aside inside the block (either would overrule it) and restored after it.
    """
    token = _UNSAFE_LOAD.set(unsafe)
    saved = {name: os.environ.pop(name, None) for name in _FORCE}
    if not unsafe:
        os.environ[_FORCE[0]] = "1"
    try:
        yield
    finally:
        _UNSAFE_LOAD.reset(token)
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def _load_error(filename: str, local: str, exc: Exception, unsafe: bool) -> CheckpointError:
    """Name the file; say whether it was refused (unsafe globals) or cannot be read at all."""
    text = str(exc)
    if unsafe:
        return CheckpointError(
            f"Cannot load checkpoint {filename!r} with full unpickling (--unsafe-load): "
            f"{type(exc).__name__}: {text}"
        )
    detail = text.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
    detail = " ".join(detail.split()) or type(exc).__name__
    try:
        offending = torch.serialization.get_unsafe_globals_in_checkpoint(local)
    except Exception:  # not a zip checkpoint: the global is only named in torch's message
        offending = list(dict.fromkeys(re.findall(r"GLOBAL ([\w.]+)", text)))
    if offending or "global" in detail.lower() or "is not allowed in a checkpoint" in detail:
        return CheckpointError(
            f"Refusing to load checkpoint {filename!r}: it needs "
            f"{', '.join(offending) or detail}, which loading weights only does not allow "
            f"(unpickling it could run code). If you trust the file, load it with --unsafe-load "
            f"(config: unsafe_load=True)."
        )
    return CheckpointError(
        f"Cannot read checkpoint {filename!r} (truncated, empty or not a PyTorch file?): "
        f"{type(exc).__name__}: {detail}"
    )


def load_checkpoint_file(
    filename: str, map_location: Any = "cpu", unsafe: bool | None = None, mmap: bool = False
) -> dict:
    """Load a checkpoint (local path or URL), weights only unless asked; name the file in errors.

    The one reader behind every loading path (``--resume``, ``load_from``, ``init_cfg``,
    ``LUTMAE``, the tools). Anything outside :data:`SAFE_GLOBALS` is refused, naming the file
    and the globals, unless the user opts in (``--unsafe-load``, ``unsafe_load=True``).

    Args:
        filename (str): Local path, or any URI mmengine's file backends read (``http(s)://``).
        map_location (Any): As in ``torch.load``. Defaults to ``'cpu'``.
        unsafe (bool, optional): Unpickle fully (trusted files only). Defaults to the
            :func:`checkpoint_policy` in force (weights only).
        mmap (bool): Map the tensors instead of reading them (to read ``meta`` cheaply).

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: A local file that does not exist.
        CheckpointError: Refused, unreadable (truncated, empty, not a PyTorch file) or not a dict.
    """
    filename = os.fspath(filename)
    if "://" not in filename and not osp.isfile(filename):
        where = "is a directory" if osp.isdir(filename) else "does not exist"
        raise FileNotFoundError(f"Checkpoint file {filename!r} {where}.")
    unsafe = _UNSAFE_LOAD.get() if unsafe is None else unsafe
    scheme = filename.split("://")[0] if "://" in filename else None
    if scheme is not None and scheme not in prefix_to_backends:
        raise CheckpointError(
            f"Cannot read checkpoint {filename!r}: no file backend reads {scheme}:// "
            f"(model-zoo names such as open-mmlab:// are not resolved); give a local path or "
            f"a URL of the file itself."
        )
    with get_local_path(filename) as local:
        try:
            if unsafe:
                print_log(f"Loading {filename} with full unpickling (--unsafe-load).", "current")
            mmap = mmap and zipfile.is_zipfile(local)  # the legacy format cannot be mapped
            ckpt = torch.load(local, map_location, weights_only=not unsafe, mmap=mmap)
        except Exception as exc:
            raise _load_error(filename, local, exc, unsafe) from exc
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"Checkpoint {filename!r} holds a {type(ckpt).__name__}, not a dict.")
    return dict(ckpt)


def _first(items: Iterable[str], n: int = 5) -> str:
    items = list(items)
    return f"{', '.join(items[:n])}{', ...' if len(items) > n else ''} ({len(items)} in all)"


def match_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    what: str,
    allow_missing: Iterable[str] = (),
    allow_unused: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` that the model expects; any misfit is an error naming the keys.

    Args:
        state (Mapping): Checkpoint tensors, named as the model's keys.
        expected (Mapping): The model's ``{key: shape}``.
        what (str): Start of the error message (the file and the model).
        allow_missing (Iterable[str]): ``fnmatch`` patterns of model keys the checkpoint may lack.
        allow_unused (Iterable[str]): Patterns of checkpoint keys the model may leave unused.

    Returns:
        dict: The tensors to load.

    Raises:
        CheckpointMismatchError: Missing, unexpected or wrongly shaped tensors.
    """

    def allowed(key, patterns):
        return any(fnmatch.fnmatchcase(key, p) for p in patterns)

    missing = [f"{k} {list(s)}" for k, s in expected.items()
               if k not in state and not allowed(k, allow_missing)]  # fmt: skip
    unused = [f"{k} {list(v.shape)}" for k, v in state.items()
              if k not in expected and not allowed(k, allow_unused)]  # fmt: skip
    shapes = [f"{k}: checkpoint {list(v.shape)} vs model {list(expected[k])}"
              for k, v in state.items() if k in expected and v.shape != expected[k]]  # fmt: skip
    lines = [f"  {name} {_first(keys)}" for name, keys in (
        ("shape mismatch:", shapes), ("missing in checkpoint:", missing),
        ("unexpected in checkpoint:", unused)) if keys]  # fmt: skip
    if lines:
        raise CheckpointMismatchError("\n".join([f"{what}:", *lines]))
    return {k: v for k, v in state.items() if k in expected}


@WEIGHT_INITIALIZERS.register_module(name="Pretrained")
class StrictPretrainedInit:
    """mmengine's ``Pretrained`` initializer, loading weights only and strictly.

    ``init_cfg=dict(type='Pretrained', _scope_='lut_plugin', checkpoint=..., ...)``. mmengine's
    loads with ``strict=False``: misfitting tensors only log a warning and stay random. Here any
    misfit outside the declared ones is an error naming the file and the keys. (The name stays
    ``Pretrained``: mmengine applies that initializer after all others.)

    Args:
        checkpoint (str): Checkpoint path or URL (read by :func:`load_checkpoint_file`).
        prefix (str, optional): Load only the keys under this prefix, with the prefix removed.
        map_location (str): As in ``torch.load``. Defaults to ``'cpu'``.
        allow_missing (Iterable[str]): ``fnmatch`` patterns of model keys the checkpoint may
            lack (new layers of the recipe, e.g. ``'ln2.*'``).
        allow_unused (Iterable[str]): Patterns of checkpoint keys the model may leave unused
            (pre-training-only tensors, e.g. ``'ln1.*'``, ``'mask_token'``).
    """

    def __init__(
        self,
        checkpoint: str,
        prefix: str | None = None,
        map_location: str = "cpu",
        allow_missing: Iterable[str] = (),
        allow_unused: Iterable[str] = (),
    ) -> None:
        self.checkpoint, self.prefix, self.map_location = checkpoint, prefix, map_location
        self.allow_missing, self.allow_unused = tuple(allow_missing), tuple(allow_unused)

    def __call__(self, module: torch.nn.Module) -> None:
        """Load the checkpoint into ``module``; raise :class:`CheckpointMismatchError` on misfit."""
        from mmengine.model.weight_init import update_init_info

        name = self.checkpoint
        ckpt = load_checkpoint_file(name, self.map_location)
        state = ckpt.get("state_dict", ckpt)
        if self.prefix:
            n = len(self.prefix)
            state = {k[n:]: v for k, v in state.items() if k.startswith(self.prefix)}
            if not state:
                raise CheckpointMismatchError(
                    f"Checkpoint {name!r} has no {self.prefix!r}* keys; its first keys: "
                    f"{_first(ckpt.get('state_dict', ckpt))}"
                )
        prepare = getattr(module, "_prepare_relative_position_bias_table", None)
        if prepare:  # BEiTViT: each block starts from the pre-trained shared table
            prepare(state, "")
        expected = {k: v.shape for k, v in module.state_dict().items()}
        what = f"Checkpoint {name!r} (prefix {self.prefix!r}) does not fit {type(module).__name__}"
        state = match_state_dict(state, expected, what, self.allow_missing, self.allow_unused)
        module.load_state_dict(state, strict=False)
        print_log(f"Loaded {len(state)} tensors from {name} (prefix {self.prefix!r})", "current")
        if hasattr(module, "_params_init_info"):
            update_init_info(module, init_info=f"strict Pretrained: {name} ({self.prefix or ''})")
