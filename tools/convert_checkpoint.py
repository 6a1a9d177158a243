"""Convert LUT checkpoints: export an encoder for mmseg or timm, or import reference weights.

``--to mmseg``: one encoder under mmseg ``MAE`` names, with an export record in ``meta``.
``--to timm``: the encoder under timm's ``VisionTransformer`` names (``.safetensors``, ``.pth``,
``.pt``), checked to load strictly into timm first. ``--from timm``: the reference
implementation's weights (the teacher under ``--teacher-key``) as a ``LUT`` state dict.
"""

from __future__ import annotations

import argparse
import io
import math
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from lut_plugin.convert import (  # noqa: E402
    ENCODER_PREFIXES,
    EXPORT_META_KEY,
    PRETRAIN_ONLY_KEYS,
    convert_timm_lut,
    encoder_to_timm,
    extract_encoder,
)
from lut_plugin.runtime import atomic_write, load_checkpoint_file  # noqa: E402
from lut_plugin.runtime.loading import first_items  # noqa: E402

#: (img_size, patch_size, embed_dim, depth, mlp_ratio) -> timm model of the paper's ViT sizes.
TIMM_MODELS = {
    (224, 16, 384, 12, 4.0): "vit_small_patch16_224",
    (224, 16, 768, 12, 4.0): "vit_base_patch16_224",
    (224, 16, 1024, 24, 4.0): "vit_large_patch16_224",
}


def save(obj, dst: str) -> None:
    """``torch.save`` that writes ``dst`` completely or not at all (not through mmengine's
    ``save_checkpoint``, which logs two deprecation warnings of its own file client)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(dst, buffer.getvalue())


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="source checkpoint (e.g. work_dirs/<run>/epoch_400.pth)")
    parser.add_argument("dst", help="output file")
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--to", choices=["mmseg", "timm"], help="export an encoder for it")
    direction.add_argument("--from", dest="from_", choices=["timm"], help="import its weights")
    parser.add_argument("--encoder", default="student", choices=sorted(ENCODER_PREFIXES),
                        help="student (online) encoder, or the momentum teacher")  # fmt: skip
    parser.add_argument("--teacher-key", help="--from timm: key of the teacher's state dict")
    parser.add_argument("--unsafe-load", action="store_true", help="unpickle src fully (trusted)")
    parser.add_argument("--force", action="store_true", help="replace dst if it exists")
    return parser.parse_args(argv)


def _vit_encoder(ckpt: dict, encoder: str, src: str) -> dict:
    encoder_sd = extract_encoder(ckpt, encoder, src)
    if "patch_embed.projection.weight" not in encoder_sd or "pos_embed" not in encoder_sd:
        raise ValueError(
            f"{src!r}: the {encoder} encoder has no patch_embed.projection.weight / pos_embed: "
            f"not a ViT. Its first keys: {first_items(encoder_sd)}"
        )
    return encoder_sd


def convert(src: str, dst: str, encoder: str = "student", unsafe_load: bool = False) -> dict:
    """Write the chosen encoder of ``src`` for mmseg to ``dst``; return its state dict."""
    ckpt = load_checkpoint_file(src, unsafe=unsafe_load, mmap=True)
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    if EXPORT_META_KEY in meta:
        raise ValueError(f"{src!r} is already an exported encoder, not a pre-training checkpoint")
    state_dict = _vit_encoder(ckpt, encoder, src)
    dropped = [k for k in state_dict if k in PRETRAIN_ONLY_KEYS]
    state_dict = {k: v.clone() for k, v in state_dict.items() if k not in dropped}
    export = dict(source=osp.abspath(src), encoder=encoder, prefix=ENCODER_PREFIXES[encoder])
    export.update(to="mmseg", dropped=dropped, epoch=meta.get("epoch"), iter=meta.get("iter"))
    save({"state_dict": state_dict, "meta": {EXPORT_META_KEY: export}}, dst)
    return state_dict


def convert_from_timm(src: str, dst: str, teacher_key=None, unsafe_load: bool = False) -> dict:
    """Write a ``LUT`` state dict converted from timm-style reference weights."""
    ckpt = load_checkpoint_file(src, unsafe=unsafe_load, mmap=True)
    if teacher_key is not None and teacher_key not in ckpt:
        raise KeyError(f"{src!r} has no {teacher_key!r}; its keys: {first_items(ckpt, 10)}")
    student = ckpt.get("model", ckpt.get("state_dict", ckpt))
    state_dict = convert_timm_lut(student, ckpt[teacher_key] if teacher_key else None)
    save({"state_dict": state_dict, "meta": {"converted_from": osp.abspath(src)}}, dst)
    return state_dict


def check_loads_in_timm(state_dict: dict, src: str) -> str:
    """Load ``state_dict`` strictly into timm's ViT of its geometry (meta device); return its
    name. The head count is not in the weights, so it is not checked."""
    try:
        import timm
        from timm.models.vision_transformer import VisionTransformer
    except ImportError as exc:
        raise SystemExit(f'--to timm needs timm ({exc}): pip install "lut-plugin[timm]"') from exc
    (_, n, width), patch = state_dict["pos_embed"].shape, state_dict["patch_embed.proj.weight"]
    depth = len({k.split(".")[1] for k in state_dict if k.startswith("blocks.")})
    geo = dict(img_size=math.isqrt(n - 1) * patch.shape[-1], patch_size=patch.shape[-1],
               embed_dim=width, depth=depth,
               mlp_ratio=state_dict["blocks.0.mlp.fc1.weight"].shape[0] / width)  # fmt: skip
    name = TIMM_MODELS.get(tuple(geo.values()))
    with torch.device("meta"):
        model = timm.create_model(name, num_classes=0) if name else VisionTransformer(
            **geo, num_heads=1, num_classes=0)  # fmt: skip
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        raise ValueError(f"{src!r}: the exported encoder does not load into timm "
                         f"{name or 'VisionTransformer'} {geo}: {exc}") from exc  # fmt: skip
    args = ", ".join(f"{k}={v:g}" for k, v in geo.items())
    return name or f"VisionTransformer({args}, num_heads=<as trained>)"


def convert_to_timm(src: str, dst: str, encoder: str = "student", unsafe_load: bool = False):
    """Write the chosen encoder of ``src`` under timm key names; return it and the timm model."""
    if osp.splitext(dst)[1] not in {".safetensors", ".pth", ".pt"}:
        raise ValueError(f"--to timm writes .safetensors, .pth or .pt files, got {dst!r}")
    sd = _vit_encoder(load_checkpoint_file(src, unsafe=unsafe_load, mmap=True), encoder, src)
    # safetensors wants contiguous tensors that share no storage
    state_dict = {k: v.detach().clone().contiguous() for k, v in encoder_to_timm(sd).items()}
    timm_model = check_loads_in_timm(state_dict, src)
    if dst.endswith(".safetensors"):
        from safetensors.torch import save as safetensors_bytes

        meta = dict(source=osp.abspath(src), encoder=encoder, timm_model=timm_model)
        atomic_write(dst, safetensors_bytes(state_dict, metadata=meta))
    else:
        save(state_dict, dst)
    return state_dict, timm_model


def main(argv=None) -> None:
    args = parse_args(argv)
    src, dst, encoder = args.src, args.dst, args.encoder
    if osp.exists(dst):
        if osp.exists(src) and osp.samefile(src, dst):
            raise SystemExit(f"error: {dst} is the source checkpoint itself")
        if not args.force:
            raise SystemExit(f"error: {dst} exists; pass --force to replace it")
    if args.to == "timm":
        state_dict, timm_model = convert_to_timm(src, dst, encoder, args.unsafe_load)
        print(f"wrote {dst}: {encoder} encoder of {src}, {len(state_dict)} tensors; loads "
              f"strictly into timm {timm_model} (num_classes=0)")  # fmt: skip
    elif args.from_ == "timm":
        state_dict = convert_from_timm(src, dst, args.teacher_key, args.unsafe_load)
        print(f"wrote {dst}: {len(state_dict)} tensors from {src}")
    else:
        state_dict = convert(src, dst, encoder, args.unsafe_load)
        blocks = len({k.split(".")[1] for k in state_dict if k.startswith("layers.")})
        print(f"wrote {dst}: {encoder} encoder of {src}, {len(state_dict)} tensors, {blocks} "
              f"blocks, width {state_dict['pos_embed'].shape[-1]}")  # fmt: skip


if __name__ == "__main__":
    main()
