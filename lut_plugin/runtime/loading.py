"""Safe checkpoint loading: weights only, a narrow allow-list, strict matching."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from mmengine.fileio import get_local_path
from mmengine.fileio.backends import prefix_to_backends
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model.weight_init import update_init_info

from lut_plugin.registry import WEIGHT_INITIALIZERS

try:
    from numpy._core import multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray  # type: ignore[no-redef]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, refused as unsafe, or not a dict."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose tensors do not fit the model (keys or shapes)."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` while unpickling: ``HistoryBuffer``'s statistics methods only."""
    if obj is HistoryBuffer and name in ("min", "max", "current", "mean"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed in a checkpoint")


_NUMERIC = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64"
#: What mmengine checkpoints hold besides tensors and builtins (found by listing
#: ``torch.serialization.get_unsafe_globals_in_checkpoint`` of real ones); numpy 1 and 2 names.
SAFE_GLOBALS = [
    HistoryBuffer, np.ndarray, np.dtype, argparse.Namespace,
    *(type(np.dtype(name)) for name in _NUMERIC.split()),
    *((f, f"numpy.{m}.multiarray.{f.__name__}")
      for m in ("_core", "core") for f in (multiarray._reconstruct, multiarray.scalar)),
    (_history_buffer_getattr, "builtins.getattr"),
]  # fmt: skip

_UNSAFE_LOAD: ContextVar[bool] = ContextVar("unsafe_load", default=False)
_FORCE = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")


@contextlib.contextmanager
def checkpoint_policy(unsafe: bool = False):
    """How checkpoints load inside the block (the runner wraps train/val/test in it).

    Args:
        unsafe (bool): Unpickle fully (trusted files). Otherwise weights only, for every
            ``torch.load`` of the process too (mmengine's ``Pretrained`` reads URLs with
            ``torch.hub``). torch's own switches, which would overrule it, are set aside.
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
    text = str(exc)
    if unsafe:
        return CheckpointError(f"Cannot load checkpoint {filename!r} with full unpickling "
                               f"(--unsafe-load): {type(exc).__name__}: {text}")  # fmt: skip
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
    return CheckpointError(f"Cannot read checkpoint {filename!r} (truncated, empty or not a "
                           f"PyTorch file?): {type(exc).__name__}: {detail}")  # fmt: skip


def load_checkpoint_file(
    filename: str, map_location: Any = "cpu", unsafe: bool | None = None, mmap: bool = False
) -> dict:
    """Load a checkpoint weights only (the one reader of every path); errors name the file.

    Args:
        filename (str): Local path, or a URL of mmengine's file backends (``http(s)://``).
        map_location (Any): As in ``torch.load``. Defaults to ``'cpu'``.
        unsafe (bool, optional): Unpickle fully. Defaults to the :func:`checkpoint_policy`.
        mmap (bool): Map the tensors instead of reading them (to read ``meta`` cheaply).
    """
    filename = os.fspath(filename)
    scheme = filename.split("://")[0] if "://" in filename else None
    if scheme is None and not os.path.isfile(filename):
        where = "is a directory" if os.path.isdir(filename) else "does not exist"
        raise FileNotFoundError(f"Checkpoint file {filename!r} {where}.")
    if scheme is not None and scheme not in prefix_to_backends:
        raise CheckpointError(
            f"Cannot read checkpoint {filename!r}: no file backend reads {scheme}:// "
            f"(model-zoo names such as open-mmlab:// are not resolved); give a local path or "
            f"a URL of the file itself."
        )
    unsafe = _UNSAFE_LOAD.get() if unsafe is None else unsafe
    with get_local_path(filename) as local:
        if unsafe:
            print_log(f"Loading {filename} with full unpickling (--unsafe-load).", "current")
        try:
            mmap = mmap and zipfile.is_zipfile(local)  # the legacy format cannot be mapped
            ckpt = torch.load(local, map_location, weights_only=not unsafe, mmap=mmap)
        except Exception as exc:
            raise _load_error(filename, local, exc, unsafe) from exc
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"Checkpoint {filename!r} holds a {type(ckpt).__name__}, not a dict.")
    return dict(ckpt)


def first_items(items: Iterable[str], n: int = 5) -> str:
    """``a, b, c, d, e, ... (7 in all)``: the first ``n`` items, for error messages."""
    items = list(items)
    return f"{', '.join(items[:n])}{', ...' if len(items) > n else ''} ({len(items)} in all)"


def match_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    what: str,
    allow_missing: Iterable[str] = (),
    allow_unused: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` the model expects; a misfit raises ``CheckpointMismatchError``.

    Args:
        state (Mapping): Checkpoint tensors under the model's key names.
        expected (Mapping): The model's ``{key: shape}``.
        what (str): Start of the error message (the file and the model).
        allow_missing (Iterable[str]): ``fnmatch`` patterns of keys the checkpoint may lack.
        allow_unused (Iterable[str]): Patterns of checkpoint keys the model may leave unused.
    """

    def allowed(key, patterns):
        return any(fnmatch.fnmatchcase(key, p) for p in patterns)

    missing = [f"{k} {list(s)}" for k, s in expected.items()
               if k not in state and not allowed(k, allow_missing)]  # fmt: skip
    unused = [f"{k} {list(v.shape)}" for k, v in state.items()
              if k not in expected and not allowed(k, allow_unused)]  # fmt: skip
    shapes = [f"{k}: checkpoint {list(v.shape)} vs model {list(expected[k])}"
              for k, v in state.items() if k in expected and v.shape != expected[k]]  # fmt: skip
    lines = [f"  {name} {first_items(keys)}" for name, keys in (
        ("shape mismatch:", shapes), ("missing in checkpoint:", missing),
        ("unexpected in checkpoint:", unused)) if keys]  # fmt: skip
    if lines:
        raise CheckpointMismatchError("\n".join([f"{what}:", *lines]))
    return {k: v for k, v in state.items() if k in expected}


@WEIGHT_INITIALIZERS.register_module(name="Pretrained")
class StrictPretrainedInit:
    """mmengine's ``Pretrained`` initializer (applied after all others), weights only and strict:
    a misfit outside the declared ones is an error naming the file and the keys.

    Args:
        checkpoint (str): Checkpoint path or URL.
        prefix (str, optional): Load only the keys under this prefix, with the prefix removed.
        map_location (str): As in ``torch.load``. Defaults to ``'cpu'``.
        allow_missing (Iterable[str]): Patterns of model keys the checkpoint may lack.
        allow_unused (Iterable[str]): Patterns of checkpoint keys the model may leave unused.
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
        name = self.checkpoint
        # mapped: only the tensors loaded are read (not a pre-training run's optimiser state)
        ckpt = load_checkpoint_file(name, self.map_location, mmap=True)
        state = full = ckpt.get("state_dict", ckpt)
        if self.prefix:
            state = {k[len(self.prefix) :]: v for k, v in full.items() if k.startswith(self.prefix)}
            if not state:
                raise CheckpointMismatchError(
                    f"Checkpoint {name!r} has no {self.prefix!r}* keys; its first keys: "
                    f"{first_items(full)}"
                )
        if prepare := getattr(module, "_prepare_relative_position_bias_table", None):
            prepare(state, "")  # BEiTViT: each block starts from the pre-trained shared table
        expected = {k: v.shape for k, v in module.state_dict().items()}
        what = f"Checkpoint {name!r} (prefix {self.prefix!r}) does not fit {type(module).__name__}"
        state = match_state_dict(state, expected, what, self.allow_missing, self.allow_unused)
        module.load_state_dict(state, strict=False)
        print_log(f"Loaded {len(state)} tensors from {name} (prefix {self.prefix!r})", "current")
        if hasattr(module, "_params_init_info"):
            update_init_info(module, init_info=f"strict Pretrained: {name} ({self.prefix or ''})")
