"""Checkpoint conversions: one encoder out of a pre-training checkpoint (for mmseg, fine-tuning,
timm), and timm-style key names to and from this project's."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

import torch

from lut_plugin.runtime.loading import CheckpointMismatchError, first_items

#: state-dict prefix of each encoder in a LUT pre-training checkpoint.
ENCODER_PREFIXES = {"student": "backbone.", "teacher": "teacher.backbone."}
#: encoder keys that only matter during pre-training, left out on hand-off.
PRETRAIN_ONLY_KEYS = ("mask_token",)
#: the key of the export record in the ``meta`` of ``convert_checkpoint.py --to mmseg`` files.
EXPORT_META_KEY = "lut_export"


def extract_encoder(
    checkpoint: Mapping, encoder: str = "student", filename: str = "<checkpoint>", prefix=None
) -> OrderedDict:
    """One encoder's tensors, prefix removed, from a LUT or mmpretrain MAE pre-training
    checkpoint, or a ``convert_checkpoint.py --to mmseg`` file (checked to be that encoder).

    Args:
        checkpoint (Mapping): The loaded checkpoint (with or without a ``state_dict`` level).
        encoder (str): ``'student'`` (the online encoder) or ``'teacher'`` (momentum encoder).
        filename (str): Name used in error messages.
        prefix (str, optional): Explicit key prefix, overriding the one ``encoder`` selects.
    """
    state_dict = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise CheckpointMismatchError(f"{filename!r} holds no state dict.")
    meta = checkpoint.get("meta") if isinstance(checkpoint.get("meta"), Mapping) else {}
    if prefix is None and (export := meta.get(EXPORT_META_KEY)) is not None:
        if export.get("encoder") != encoder:
            raise CheckpointMismatchError(
                f"{filename!r} was exported from the {export.get('encoder')!r} encoder of "
                f"{export.get('source')!r}, but encoder={encoder!r} was asked for; convert the "
                f"pre-training checkpoint again with --encoder {encoder} or load it directly."
            )
        return OrderedDict(state_dict)
    prefix = ENCODER_PREFIXES[encoder] if prefix is None else prefix
    out = OrderedDict((k[len(prefix) :], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not out:
        what = (f"no {prefix!r}* keys" if encoder != "teacher" else "no 'teacher.backbone.*' keys "
                "(an MAE checkpoint, or a LUT run saved without its teacher?)")  # fmt: skip
        raise CheckpointMismatchError(
            f"{filename!r} is not a LUT/MAE pre-training checkpoint for encoder={encoder!r}: "
            f"{what}. Its first keys: {first_items(state_dict)}"
        )
    return out


# timm-style names (the reference implementation, timm's ViT) <-> LUT keys, both ways: a key
# prefix (or, without a final dot, a whole key) each; {} is a block number. (mmpretrain's
# converters are one-way scripts covering neither the MAE decoder nor LUT's heads.)
_PARTS = [("norm1.", "ln1."), ("norm2.", "ln2."), ("mlp.fc1.", "ffn.layers.0.0."),
          ("mlp.fc2.", "ffn.layers.1."), ("", "")]  # fmt: skip
TIMM_KEYS = [
    *((f"blocks.{{}}.{t}", f"backbone.layers.{{}}.{m}") for t, m in _PARTS),
    *((f"decoder_blocks.{{}}.{t}", f"neck.decoder_blocks.{{}}.{m}") for t, m in _PARTS),
    ("head.{}.", "projector.mlp.layers.{}."), ("predictor.{}.", "predictor.mlp.layers.{}."),
    ("patch_embed.proj.", "backbone.patch_embed.projection."), ("cls_token", "backbone.cls_token"),
    ("pos_embed", "backbone.pos_embed"), ("norm.", "backbone.ln1."), ("decoder_norm.", "neck.ln1."),
    ("decoder_embed.", "neck.decoder_embed."), ("decoder_pred.", "neck.decoder_pred."),
    ("mask_token", "neck.mask_token"), ("decoder_pos_embed", "neck.decoder_pos_embed"),
]  # fmt: skip


def timm_to_mmpretrain_key(key: str, to_timm: bool = False) -> str:
    """A timm-style LUT/MAE key (``blocks.0.mlp.fc1.weight``) as its ``LUT`` model key, or the
    other way with ``to_timm``; ``KeyError`` for a key without a counterpart."""
    for pair in TIMM_KEYS:
        src, dst = pair[::-1] if to_timm else pair
        pattern = re.escape(src).replace(r"\{\}", r"(\d+)") + ("(.+)" if src.endswith(".") else "")
        if m := re.fullmatch(pattern, key):
            rest = m[m.lastindex] if src.endswith(".") else ""
            return dst.format(*m.groups()[: src.count("{}")]) + rest
    raise KeyError(f"no {'timm-style key maps to' if to_timm else 'mapping for timm-style key'} "
                   f"{key!r}")  # fmt: skip


def encoder_to_timm(encoder_sd: Mapping[str, torch.Tensor]) -> OrderedDict:
    """An encoder state dict (of :func:`extract_encoder`) under the names of timm's
    ``VisionTransformer`` (``num_classes=0``); ``mask_token`` left out."""
    return OrderedDict((timm_to_mmpretrain_key(f"backbone.{k}", to_timm=True), v)
                       for k, v in encoder_sd.items() if k not in PRETRAIN_ONLY_KEYS)  # fmt: skip


def convert_timm_lut(
    student: Mapping[str, torch.Tensor], teacher: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """The reference implementation's timm-style student (and teacher: its encoder and
    projector, of an EMA of the whole model) as a ``LUT`` state dict."""
    out = {timm_to_mmpretrain_key(k): v for k, v in student.items()}
    for key, value in (teacher or {}).items():
        if (new := timm_to_mmpretrain_key(key)).startswith(("backbone.", "projector.")):
            out[f"teacher.{new}"] = value
    return out
