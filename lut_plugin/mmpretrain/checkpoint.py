"""Key mapping from timm-style (reference implementation) LUT weights to this project's."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# timm block names -> mmpretrain TransformerEncoderLayer names.
_BLOCK_RULES = [
    (r"norm1\.", "ln1."),
    (r"norm2\.", "ln2."),
    (r"mlp\.fc1\.", "ffn.layers.0.0."),
    (r"mlp\.fc2\.", "ffn.layers.1."),
]


def _block(rest: str) -> str:
    for pattern, repl in _BLOCK_RULES:
        rest = re.sub(rf"^{pattern}", repl, rest)
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
    if m := re.match(r"^blocks\.(\d+)\.(.*)$", key):
        return f"backbone.layers.{m[1]}.{_block(m[2])}"
    if m := re.match(r"^decoder_blocks\.(\d+)\.(.*)$", key):
        return f"neck.decoder_blocks.{m[1]}.{_block(m[2])}"
    if m := re.match(r"^(head|predictor)\.(\d+)\.(.*)$", key):
        owner = "projector" if m[1] == "head" else "predictor"
        return f"{owner}.mlp.layers.{m[2]}.{m[3]}"
    simple = {
        "patch_embed.proj.weight": "backbone.patch_embed.projection.weight",
        "patch_embed.proj.bias": "backbone.patch_embed.projection.bias",
        "cls_token": "backbone.cls_token",
        "pos_embed": "backbone.pos_embed",
        "norm.weight": "backbone.ln1.weight",
        "norm.bias": "backbone.ln1.bias",
        "decoder_norm.weight": "neck.ln1.weight",
        "decoder_norm.bias": "neck.ln1.bias",
    }
    if key in simple:
        return simple[key]
    if re.match(r"^(decoder_embed|decoder_pred)\.", key) or key in {
        "mask_token",
        "decoder_pos_embed",
    }:
        return f"neck.{key}"
    raise KeyError(f"no mapping for timm-style key {key!r}")


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
