"""Checkpoint files: safe loading, crash-safe writing, and handing a pre-trained encoder on.

* :func:`load_checkpoint_file` is the one reader behind every loading path (``--resume``,
  ``load_from``, ``tools/test.py``, ``init_cfg``, the mmseg ``LUTMAE`` backbone, the tools;
  local files and URLs). It unpickles weights only: tensors, builtins and the few types real
  mmengine checkpoints carry (:data:`SAFE_GLOBALS`). Anything else is refused with an error
  naming the file and the offending globals, unless the user opts in (``--unsafe-load``,
  config ``unsafe_load=True``, see :func:`checkpoint_policy`).
* :func:`atomic_write` and the ``lut_atomic_local`` file backend write a file completely or not
  at all (temporary file in the same folder, fsync, rename).
* ``init_cfg=dict(type='Pretrained', _scope_='lut_plugin', ...)`` is mmengine's ``Pretrained``
  initializer, but safe and strict (:class:`StrictPretrainedInit`).
* :func:`extract_encoder` / :func:`match_encoder_state_dict` pick one encoder out of a
  pre-training checkpoint and check it against a model, strictly.
* :func:`convert_timm_lut` maps timm-style weights of the reference implementation to ``LUT``.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import math
import os
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from mmengine.fileio import LocalBackend, get_local_path, register_backend
from mmengine.fileio.backends import prefix_to_backends
from mmengine.logging import HistoryBuffer, print_log

from lut_plugin.registry import WEIGHT_INITIALIZERS

#: state-dict prefix of each encoder in a LUT pre-training checkpoint.
ENCODER_PREFIXES = {"student": "backbone.", "teacher": "teacher.backbone."}

#: encoder keys that only matter during pre-training and are skipped (and logged) on hand-off.
PRETRAIN_ONLY_KEYS = ("mask_token",)

#: the key holding the export record in a file written by ``tools/convert_checkpoint.py``.
EXPORT_META_KEY = "lut_export"

_SHOW = 5  # how many offending keys an error message lists


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, refused as unsafe, or not a dict."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose tensors do not fit the model (keys or shapes)."""


# ------------------------------------------------------------------------ safe loading


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling: ``HistoryBuffer`` methods only.

    mmengine's ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer,
    'mean')``; allowing the real ``getattr`` would reach any attribute of any allowed object.
    """
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
    # A pickled dtype is rebuilt on an instance of its class (numpy.dtypes.Float64DType, ...).
    numeric = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64"
    entries += [type(np.dtype(name)) for name in numeric.split()]
    entries += [(_history_buffer_getattr, "builtins.getattr")]
    return entries


#: What an mmengine checkpoint holds besides tensors and builtins (found by saving real
#: checkpoints and listing ``torch.serialization.get_unsafe_globals_in_checkpoint``): the message
#: hub's ``HistoryBuffer`` (numpy arrays, methods via ``getattr``), numpy scalars and dtypes
#: (``meta``, ``runtime_info``), and ``argparse.Namespace`` (``args`` of timm-style checkpoints).
SAFE_GLOBALS = _safe_globals()
# Also lets mmengine's own ``torch.load`` calls (weights-only by default since torch 2.6) read them.
torch.serialization.add_safe_globals(SAFE_GLOBALS)

_UNSAFE_LOAD: ContextVar[bool] = ContextVar("lut_unsafe_load", default=False)
_FORCE_WEIGHTS_ONLY = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
_FORCE_VARIABLES = (_FORCE_WEIGHTS_ONLY, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")


@contextlib.contextmanager
def checkpoint_policy(unsafe: bool = False) -> Iterator[None]:
    """Set how checkpoints load inside the block (``LUTRunner`` wraps train/val/test in it).

    Args:
        unsafe (bool): False: weights only, for :func:`load_checkpoint_file` and for every other
            ``torch.load`` in the process too (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``; e.g. mmengine's
            ``Pretrained`` initializer loads URLs through ``torch.hub``, which unpickles fully).
            True: full unpickling, for files the user trusts (config ``unsafe_load=True``).

    torch's own switches (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``, ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``)
    set by the user are put aside inside the block and restored after it.
    """
    token = _UNSAFE_LOAD.set(unsafe)
    saved = {name: os.environ.get(name) for name in _FORCE_VARIABLES}
    # The policy replaces both of torch's switches while it holds: torch refuses every load
    # when both are set, and either would overrule the policy.
    for name in _FORCE_VARIABLES:
        os.environ.pop(name, None)
    if not unsafe:
        os.environ[_FORCE_WEIGHTS_ONLY] = "1"
    try:
        yield
    finally:
        _UNSAFE_LOAD.reset(token)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _load_error(filename: str, local: str, exc: Exception, unsafe: bool) -> CheckpointError:
    """Name the file; say whether it was refused (unsafe globals) or cannot be read at all."""
    text = str(exc)
    if unsafe:  # nothing was refused: say what failed
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

    Args:
        filename (str): Local path, or any URI mmengine's file backends read (``http(s)://``...).
        map_location (Any): As in ``torch.load``. Defaults to ``'cpu'``.
        unsafe (bool, optional): Unpickle fully (only for trusted files). Defaults to the
            :func:`checkpoint_policy` in force (weights only).
        mmap (bool): Map the tensors instead of reading them (to read ``meta`` cheaply).

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: A local file that does not exist.
        CheckpointError: Refused (needs globals outside :data:`SAFE_GLOBALS`), unreadable
            (truncated, empty, not a PyTorch file) or not a dict.
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
            # (the legacy, non-zip format cannot be memory-mapped)
            mmap = mmap and zipfile.is_zipfile(local)
            ckpt = torch.load(local, map_location, weights_only=not unsafe, mmap=mmap)
        except Exception as exc:
            raise _load_error(filename, local, exc, unsafe) from exc
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"Checkpoint {filename!r} holds a {type(ckpt).__name__}, not a dict.")
    return dict(ckpt)


# ------------------------------------------------------------------------ crash-safe writing


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``path`` completely or not at all: temporary file beside it, fsync, rename.

    A crash leaves either the old file (or none) or the new one, never a truncated file; the
    temporary ``<path>.partial`` of an interrupted write is overwritten by the next attempt.

    Args:
        path (str | os.PathLike): The file to (re)place.
        data (bytes): Its new content.
    """
    path = osp.abspath(os.fspath(path))
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    fd = os.open(folder, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@register_backend("lut_atomic_local")
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing through :func:`atomic_write`.

    Selected with ``backend_args=dict(backend='lut_atomic_local')`` (``LUTCheckpointHook``
    does so for local folders); other prefixes and names are untouched.
    """

    def put(self, obj: bytes, filepath: str | os.PathLike) -> None:
        """Write bytes atomically."""
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: str | os.PathLike, encoding: str = "utf-8") -> None:
        """Write text atomically."""
        atomic_write(filepath, obj.encode(encoding))


# ------------------------------------------------------------------------ encoder hand-off


def _first(items: Iterable[str], n: int = _SHOW) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return f"{shown}{', ...' if len(items) > n else ''} ({len(items)} in all)"


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


@WEIGHT_INITIALIZERS.register_module(name="Pretrained")
class StrictPretrainedInit:
    """mmengine's ``Pretrained`` initializer, loading safely and strictly.

    Used as ``init_cfg=dict(type='Pretrained', _scope_='lut_plugin', checkpoint=..., ...)``.
    mmengine's loads with ``strict=False``: missing, unexpected or wrongly shaped tensors only
    log a warning and stay at their random initial values. Here any of them is an error naming
    the file and the keys, except the ones a recipe declares.

    Args:
        checkpoint (str): Checkpoint path or URL (read by :func:`load_checkpoint_file`).
        prefix (str, optional): Load only the keys under this prefix (e.g. ``'backbone.'``), with
            the prefix removed.
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
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location
        self.allow_missing = tuple(allow_missing)
        self.allow_unused = tuple(allow_unused)

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
        what = f"{name!r} (prefix {self.prefix!r}) does not fit {type(module).__name__}"
        try:
            result = module.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches, listed by torch
            raise CheckpointMismatchError(f"Checkpoint {what}:\n{exc}") from exc
        missing = [k for k in result.missing_keys if not _matches(k, self.allow_missing)]
        unused = [k for k in result.unexpected_keys if not _matches(k, self.allow_unused)]
        if missing or unused:
            lines = [f"Checkpoint {what}:"]
            if missing:
                lines.append(f"  missing in checkpoint: {_first(missing)}")
            if unused:
                lines.append(f"  unused from checkpoint: {_first(unused)}")
            lines.append("  (recipes declare expected differences in allow_missing/allow_unused)")
            raise CheckpointMismatchError("\n".join(lines))
        print_log(f"Loaded {len(state)} tensors from {name} (prefix {self.prefix!r})", "current")
        if hasattr(module, "_params_init_info"):
            update_init_info(module, init_info=f"strict Pretrained: {name} ({self.prefix or ''})")


def extract_encoder(
    checkpoint: Mapping, encoder: str = "student", filename: str = "<checkpoint>", prefix=None
) -> OrderedDict:
    """Return one encoder's state dict, prefix removed, from a pre-training checkpoint.

    Accepted inputs: a LUT pre-training checkpoint (``backbone.*`` student, ``teacher.backbone.*``
    teacher), an mmpretrain MAE checkpoint (``backbone.*``, student only) and a file written by
    ``tools/convert_checkpoint.py --to mmseg`` (bare encoder keys, export record in ``meta``).

    Args:
        checkpoint (Mapping): The loaded checkpoint (with or without a ``state_dict`` level).
        encoder (str): ``'student'`` (online encoder, the default) or ``'teacher'`` (momentum
            encoder).
        filename (str): Name used in error messages.
        prefix (str, optional): Explicit key prefix, overriding the one ``encoder`` selects.

    Returns:
        OrderedDict: The encoder's tensors under mmpretrain ViT key names.
    """
    if encoder not in ENCODER_PREFIXES:
        raise ValueError(f"encoder must be one of {sorted(ENCODER_PREFIXES)}, got {encoder!r}")
    state_dict = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise CheckpointMismatchError(f"{filename!r} holds no state dict.")
    keys = list(state_dict)
    meta = checkpoint.get("meta") if isinstance(checkpoint.get("meta"), Mapping) else {}
    export = meta.get(EXPORT_META_KEY) if isinstance(meta, Mapping) else None

    if prefix is None and export is not None:
        # Already converted: bare encoder keys; check that the wanted encoder was exported.
        if export.get("encoder") != encoder:
            raise CheckpointMismatchError(
                f"{filename!r} was exported from the {export.get('encoder')!r} encoder of "
                f"{export.get('source')!r}, but encoder={encoder!r} was asked for; convert the "
                f"pre-training checkpoint again with --encoder {encoder} or load it directly."
            )
        return OrderedDict((k, v) for k, v in state_dict.items())

    prefix = ENCODER_PREFIXES[encoder] if prefix is None else prefix
    out = OrderedDict((k[len(prefix) :], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not out:
        what = (
            "no 'teacher.backbone.*' keys (an MAE checkpoint, or a LUT run saved without its "
            "teacher?)"
            if encoder == "teacher"
            else f"no {prefix!r}* keys"
        )
        raise CheckpointMismatchError(
            f"{filename!r} is not a LUT/MAE pre-training checkpoint for encoder={encoder!r}: "
            f"{what}. Its first keys: {_first(keys)}"
        )
    return out


def match_encoder_state_dict(
    encoder_sd: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    filename: str,
    model_desc: str,
    new_keys: Iterable[str] = (),
    skip_keys: Iterable[str] = (),
    resizable: Mapping[str, tuple[int, int]] | None = None,
) -> tuple[OrderedDict, list[str]]:
    """Check an encoder state dict against a model's keys and shapes, strictly.

    Args:
        encoder_sd (Mapping): Encoder tensors (prefix removed).
        expected (Mapping): The model's ``{key: shape}``.
        filename (str): Checkpoint name for the error message.
        model_desc (str): Model description for the error message.
        new_keys (Iterable[str]): Model keys that the checkpoint is not expected to have
            (parameters the pre-training encoder lacks, initialised to an identity by the model).
        skip_keys (Iterable[str]): Checkpoint keys deliberately not loaded (reported back).
        resizable (Mapping, optional): ``{key: (H, W)}`` of position embeddings that may be
            resized (bicubic, ``mmpretrain.models.utils.resize_pos_embed``) to the model's patch
            grid when only the number of tokens differs.

    Returns:
        tuple[OrderedDict, list[str]]: The state dict to load (resized where needed) and the
        checkpoint keys that were skipped.
    """
    from mmpretrain.models.utils import resize_pos_embed  # bicubic, extra tokens kept

    new_keys, skip_keys = set(new_keys), set(skip_keys)
    resizable = dict(resizable or {})
    skipped = [k for k in encoder_sd if k in skip_keys or k in PRETRAIN_ONLY_KEYS]
    src = OrderedDict((k, v) for k, v in encoder_sd.items() if k not in skipped)

    missing = [k for k in expected if k not in src and k not in new_keys]
    unexpected = [k for k in src if k not in expected]
    mismatched, out = [], OrderedDict()
    for k, v in src.items():
        if k not in expected:
            continue
        want = tuple(expected[k])
        if tuple(v.shape) != want and k in resizable and v.dim() == 3 and v.shape[-1] == want[-1]:
            extra = want[1] - math.prod(resizable[k])
            side = math.isqrt(v.shape[1] - extra)
            if side * side == v.shape[1] - extra:  # a non-square source grid stays a mismatch
                v = resize_pos_embed(v, (side, side), resizable[k], num_extra_tokens=extra)
        if tuple(v.shape) != want:
            mismatched.append(f"{k}: checkpoint {list(v.shape)} vs model {list(want)}")
            continue
        out[k] = v

    if missing or unexpected or mismatched:
        lines = [
            f"Pre-trained checkpoint {filename!r} does not fit the segmentation backbone "
            f"{model_desc} (different width, depth or patch size, or not a ViT encoder?):"
        ]
        if mismatched:
            lines.append(f"  shape mismatch: {_first(mismatched)}")
        if missing:
            shapes = [f"{k} {list(expected[k])}" for k in missing]
            lines.append(f"  missing in checkpoint: {_first(shapes)}")
        if unexpected:
            shapes = [f"{k} {list(src[k].shape)}" for k in unexpected]
            lines.append(f"  unexpected in checkpoint: {_first(shapes)}")
        raise CheckpointMismatchError("\n".join(lines))
    return out, skipped


# -- key conversion: timm-style (reference implementation, timm ViT) <-> this project ---------
# One set of tables serves both directions: timm_to_mmpretrain_key reads them forwards,
# mmpretrain_to_timm_key backwards (and checks every answer against the forward mapping).
# Ours because upstream has no importable mapping: mmpretrain's converters are one-way scripts
# into mmpretrain (.mim/tools/model_converters/*_to_mmpretrain.py), none covers the MAE decoder
# or LUT's heads, and none writes timm names.

#: numbered module lists: timm name -> this project's name.
_NUMBERED = {
    "blocks": "backbone.layers",
    "decoder_blocks": "neck.decoder_blocks",
    "head": "projector.mlp.layers",
    "predictor": "predictor.mlp.layers",
}
#: inside a transformer block: timm name -> mmpretrain ``TransformerEncoderLayer`` name.
_BLOCK_PARTS = {
    "norm1.": "ln1.",
    "norm2.": "ln2.",
    "mlp.fc1.": "ffn.layers.0.0.",
    "mlp.fc2.": "ffn.layers.1.",
}
#: single tensors: timm name -> this project's name.
_SINGLE_KEYS = {
    "patch_embed.proj.weight": "backbone.patch_embed.projection.weight",
    "patch_embed.proj.bias": "backbone.patch_embed.projection.bias",
    "cls_token": "backbone.cls_token",
    "pos_embed": "backbone.pos_embed",
    "norm.weight": "backbone.ln1.weight",
    "norm.bias": "backbone.ln1.bias",
    "decoder_norm.weight": "neck.ln1.weight",
    "decoder_norm.bias": "neck.ln1.bias",
}
#: MAE decoder tensors that keep their timm name under ``neck.``.
_NECK_SAME_NAME = re.compile(r"^(decoder_embed\.|decoder_pred\.|mask_token$|decoder_pos_embed$)")


def _rename_prefix(rest: str, table: Mapping[str, str]) -> str:
    for src, dst in table.items():
        if rest.startswith(src):
            return dst + rest[len(src) :]
    return rest


def timm_to_mmpretrain_key(key: str) -> str:
    """Map one timm-style LUT/MAE key to its ``LUT`` model key.

    Encoder keys go to ``backbone.*``, decoder keys to ``neck.*``, the
    projector ``head.*`` to ``projector.mlp.layers.*`` and ``predictor.*`` to
    ``predictor.mlp.layers.*``.

    Args:
        key (str): A timm-style key such as ``blocks.0.mlp.fc1.weight``.

    Returns:
        str: The key in this project's ``LUT`` state dict.
    """
    if m := re.match(r"^(blocks|decoder_blocks|head|predictor)\.(\d+)\.(.*)$", key):
        rest = _rename_prefix(m[3], _BLOCK_PARTS) if "blocks" in m[1] else m[3]
        return f"{_NUMBERED[m[1]]}.{m[2]}.{rest}"
    if key in _SINGLE_KEYS:
        return _SINGLE_KEYS[key]
    if _NECK_SAME_NAME.match(key):
        return f"neck.{key}"
    raise KeyError(f"no mapping for timm-style key {key!r}")


def mmpretrain_to_timm_key(key: str) -> str:
    """The inverse of :func:`timm_to_mmpretrain_key`: a ``LUT`` model key to its timm name.

    ``backbone.*`` keys become the keys of timm's ``VisionTransformer`` (``blocks.{i}.*``,
    ``patch_embed.proj.*``, ``cls_token``, ``pos_embed``, final ``norm.*``).

    Args:
        key (str): A key of this project's ``LUT`` state dict, such as
            ``backbone.layers.0.ffn.layers.0.0.weight``.

    Returns:
        str: The timm-style key (``blocks.0.mlp.fc1.weight``).

    Raises:
        KeyError: If the key has no timm counterpart (e.g. a fine-tuning-only ``ln2``).
    """
    single = {mm: timm for timm, mm in _SINGLE_KEYS.items()}
    if key in single:
        timm_key = single[key]
    elif m := re.match(
        rf"^({'|'.join(re.escape(v) for v in _NUMBERED.values())})\.(\d+)\.(.*)$", key
    ):
        owner = next(t for t, mm in _NUMBERED.items() if mm == m[1])
        parts = {mm: timm for timm, mm in _BLOCK_PARTS.items()}
        rest = _rename_prefix(m[3], parts) if "blocks" in owner else m[3]
        timm_key = f"{owner}.{m[2]}.{rest}"
    else:
        timm_key = key.removeprefix("neck.")
    try:
        ok = timm_to_mmpretrain_key(timm_key) == key
    except KeyError:
        ok = False
    if not ok:
        raise KeyError(f"no timm-style key maps to {key!r}")
    return timm_key


def encoder_to_timm(encoder_sd: Mapping[str, torch.Tensor]) -> OrderedDict:
    """An encoder state dict (keys as :func:`extract_encoder` returns them) under timm's names.

    The result loads into ``timm``'s ``VisionTransformer`` with ``num_classes=0`` and
    ``strict=True`` (e.g. ``timm.create_model('vit_base_patch16_224', num_classes=0)`` for a
    ViT-B/16 pre-trained at 224 px). Pre-training-only tensors (``mask_token``) are left out.

    Args:
        encoder_sd (Mapping[str, torch.Tensor]): Encoder tensors without prefix
            (``layers.0.ln1.weight``, ``pos_embed``, ...).

    Returns:
        OrderedDict: The same tensors under timm key names.
    """
    return OrderedDict(
        (mmpretrain_to_timm_key(f"backbone.{k}"), v)
        for k, v in encoder_sd.items()
        if k not in PRETRAIN_ONLY_KEYS
    )


def convert_timm_lut(
    student: Mapping[str, torch.Tensor], teacher: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Convert timm-style student (and teacher) weights into a ``LUT`` state dict.

    Args:
        student (Mapping[str, torch.Tensor]): Student encoder, decoder,
            projector (``head.*``) and predictor weights.
        teacher (Mapping[str, torch.Tensor], optional): Teacher weights. The
            reference keeps an EMA of the whole model; LUT only uses the
            teacher's encoder and projector, so its decoder and predictor
            copies are left out.

    Returns:
        dict[str, torch.Tensor]: Keys of this project's ``LUT`` model.
    """
    out = {timm_to_mmpretrain_key(k): v for k, v in student.items()}
    for key, value in (teacher or {}).items():
        new = timm_to_mmpretrain_key(key)
        owner, rest = new.split(".", 1)
        if owner not in {"backbone", "projector"}:
            continue
        out[f"teacher.{owner}.{rest}"] = value
    return out
