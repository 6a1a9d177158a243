"""Reading LUT checkpoints and handing their encoders on (plain ``torch``, no framework).

Shared by the mmseg ``LUTMAE`` backbone, ``tools/convert_checkpoint.py`` and
``tools/analysis/encoder_analysis.py``:

* :func:`load_checkpoint_file` reads a ``.pth`` file and names it in every error;
* :func:`extract_encoder` picks the student (``backbone.*``) or the momentum teacher
  (``teacher.backbone.*``) encoder out of a pre-training state dict;
* :func:`resize_abs_pos_embed` resizes the absolute position embedding to a new patch grid
  (bicubic, extra tokens such as the cls token kept as they are);
* :func:`match_encoder_state_dict` compares an encoder state dict with a model's expected keys
  and shapes and raises :class:`CheckpointMismatchError` listing the first mismatches;
* :func:`convert_timm_lut` maps timm-style weights of the reference implementation to the
  ``LUT`` model's keys.

The key names of mmpretrain's ``MAEViT`` / ``VisionTransformer`` (and therefore of LUT's
``LUTViT``) are the key names of mmseg's ``MAE`` backbone, so no renaming is needed: the hand-off
is prefix selection, position-embedding resizing and a strict key/shape check.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os.path as osp
import pickle
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

#: state-dict prefix of each encoder in a LUT pre-training checkpoint.
ENCODER_PREFIXES = {"student": "backbone.", "teacher": "teacher.backbone."}

#: encoder keys that only matter during pre-training and are skipped (and logged) on hand-off.
PRETRAIN_ONLY_KEYS = ("mask_token",)

#: the key holding the export record in a file written by ``tools/convert_checkpoint.py``.
EXPORT_META_KEY = "lut_export"

_SHOW = 5  # how many offending keys an error message lists


class CheckpointMismatchError(ValueError):
    """A checkpoint that cannot be loaded into the segmentation backbone as it is."""


def load_checkpoint_file(filename: str) -> dict:
    """Load a checkpoint file on the CPU, naming the file in every error.

    Args:
        filename (str): Path of a ``.pth`` file (local path or any URI mmengine can fetch).

    Returns:
        dict: The loaded object (a dict; mmengine checkpoints hold ``state_dict`` and ``meta``).
    """
    if "://" not in filename and not osp.isfile(filename):
        raise FileNotFoundError(f"Pre-trained checkpoint file not found: {filename!r}")
    from mmengine.fileio import get_local_path
    from mmengine.logging import print_log

    try:
        with get_local_path(filename) as local:
            try:
                ckpt = torch.load(local, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError:
                # An mmengine checkpoint may hold objects the weights-only unpickler refuses
                # (message hub, meta); fall back to full unpickling: only load files you trust.
                print_log(
                    f"{filename}: weights-only loading refused, loading with "
                    f"weights_only=False (trusting the file)",
                    logger="current",
                    level=logging.WARNING,
                )
                ckpt = torch.load(local, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointMismatchError(
            f"Could not read {filename!r} as a PyTorch checkpoint: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(ckpt, Mapping):
        raise CheckpointMismatchError(
            f"{filename!r} is not a LUT/MAE pre-training checkpoint: it holds a "
            f'{type(ckpt).__name__}, not a dict with a "state_dict".'
        )
    return dict(ckpt)


def _first(items: Iterable[str], n: int = _SHOW) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return f"{shown}{', ...' if len(items) > n else ''} ({len(items)} in all)"


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


def resize_abs_pos_embed(
    pos_embed: torch.Tensor,
    dst_hw: tuple[int, int],
    num_extra_tokens: int = 1,
    mode: str = "bicubic",
) -> torch.Tensor:
    """Resize a ``(1, extra + H*W, C)`` absolute position embedding to a new patch grid.

    The source grid must be square (it is for every 224-px pre-training run); the extra tokens
    (cls) are kept unchanged, the patch part is interpolated with ``align_corners=False``.

    Args:
        pos_embed (torch.Tensor): Source embedding, shape ``(1, extra + H*W, C)``.
        dst_hw (tuple[int, int]): Target grid ``(H', W')``.
        num_extra_tokens (int): Leading tokens that are not on the grid. Defaults to 1.
        mode (str): Interpolation mode. Defaults to ``'bicubic'``.

    Returns:
        torch.Tensor: Shape ``(1, extra + H'*W', C)``, same dtype as the input.
    """
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must have shape (1, N, C), got {tuple(pos_embed.shape)}")
    n_grid = pos_embed.shape[1] - num_extra_tokens
    side = math.isqrt(n_grid)
    if side * side != n_grid:
        raise ValueError(f"pos_embed grid of {n_grid} tokens is not square")
    dst_h, dst_w = dst_hw
    if (side, side) == (dst_h, dst_w):
        return pos_embed
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    c = grid.shape[-1]
    grid = grid.reshape(1, side, side, c).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(dst_h, dst_w), mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, dst_h * dst_w, c).to(pos_embed.dtype)
    return torch.cat([extra, grid], dim=1)


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
            resized to the model's patch grid when only the number of tokens differs.

    Returns:
        tuple[OrderedDict, list[str]]: The state dict to load (resized where needed) and the
        checkpoint keys that were skipped.
    """
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
            with contextlib.suppress(ValueError):  # a non-square source grid stays a mismatch
                v = resize_abs_pos_embed(v, resizable[k], num_extra_tokens=extra)
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
