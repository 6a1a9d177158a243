"""Convert LUT checkpoints: export an encoder for mmseg or timm, or import reference weights.

    python tools/convert_checkpoint.py --to mmseg|timm SRC DST [--encoder student|teacher]
    python tools/convert_checkpoint.py --from timm SRC DST [--teacher-key model_ema]

``--to mmseg``: only the chosen encoder (``backbone.*`` student, the default, or
``teacher.backbone.*``) under mmseg ``MAE`` key names, with an export record in ``meta``: a small
file to share, or for mmseg's own ``MAE`` configs (``LUTMAE`` reads pre-training checkpoints).
``--to timm``: the encoder under timm's ``VisionTransformer`` names (``.safetensors``, or
``.pth``/``.pt``), checked to load strictly into ``vit_{small,base,large}_patch16_224`` (or a
``VisionTransformer`` of its geometry) on the meta device before it is written.
``--from timm``: the reference implementation's weights (``model``: encoder, decoder, ``head.*``
projector, ``predictor.*``; the teacher under ``--teacher-key``) as a ``LUT`` state dict, with
the mapping the golden-step test proves exact (docs/integrations.md).
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


def save(obj, dst: str) -> None:
    """``torch.save`` that writes ``dst`` completely or not at all (never half a file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(dst, buffer.getvalue())


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="pre-training checkpoint (e.g. work_dirs/<run>/epoch_400.pth)")
    parser.add_argument("dst", help="output file")
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument(
        "--to", choices=["mmseg", "timm"], help="export an encoder for this framework"
    )
    direction.add_argument(
        "--from", dest="from_", choices=["timm"], help="import reference-implementation weights"
    )
    parser.add_argument(
        "--teacher-key", default=None, help="--from timm: key of the teacher's state dict"
    )
    parser.add_argument(
        "--unsafe-load", action="store_true", help="unpickle src fully (only for trusted files)"
    )
    parser.add_argument("--force", action="store_true", help="replace dst if it exists")
    parser.add_argument(
        "--encoder",
        default="student",
        choices=sorted(ENCODER_PREFIXES),
        help="student (online) encoder, the default, or the momentum teacher",
    )
    return parser.parse_args(argv)


def _vit_encoder(ckpt: dict, encoder: str, src: str) -> dict:
    """The chosen encoder's tensors of a loaded checkpoint; an error if it is no ViT."""
    encoder_sd = extract_encoder(ckpt, encoder, src)
    if "patch_embed.projection.weight" not in encoder_sd or "pos_embed" not in encoder_sd:
        raise ValueError(
            f"{src!r}: the {encoder} encoder has no patch_embed.projection.weight / pos_embed; "
            f"not a ViT encoder. Its first keys: {list(encoder_sd)[:5]}"
        )
    return encoder_sd


def convert(src: str, dst: str, encoder: str = "student", unsafe_load: bool = False) -> dict:
    """Write ``dst`` from ``src`` and return the exported state dict."""
    ckpt = load_checkpoint_file(src, unsafe=unsafe_load)
    if isinstance(ckpt.get("meta"), dict) and EXPORT_META_KEY in ckpt["meta"]:
        raise ValueError(f"{src!r} is already an exported encoder, not a pre-training checkpoint")
    state_dict = _vit_encoder(ckpt, encoder, src)
    dropped = [k for k in state_dict if k in PRETRAIN_ONLY_KEYS]
    state_dict = {k: v.clone() for k, v in state_dict.items() if k not in dropped}
    src_meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    meta = {
        EXPORT_META_KEY: dict(
            source=osp.abspath(src),
            encoder=encoder,
            prefix=ENCODER_PREFIXES[encoder],
            to="mmseg",
            dropped=dropped,
            epoch=src_meta.get("epoch"),
            iter=src_meta.get("iter"),
        )
    }
    save({"state_dict": state_dict, "meta": meta}, dst)
    return state_dict


def convert_from_timm(
    src: str, dst: str, teacher_key: str | None = None, unsafe_load: bool = False
) -> dict:
    """Write a ``LUT`` state dict converted from timm-style reference weights."""
    ckpt = load_checkpoint_file(src, unsafe=unsafe_load)
    student = ckpt.get("model", ckpt.get("state_dict", ckpt))
    teacher = None
    if teacher_key is not None:
        if teacher_key not in ckpt:
            raise KeyError(f"{src!r} has no {teacher_key!r}; its keys: {list(ckpt)[:10]}")
        teacher = ckpt[teacher_key]
    state_dict = convert_timm_lut(student, teacher)
    save({"state_dict": state_dict, "meta": {"converted_from": osp.abspath(src)}}, dst)
    return state_dict


#: (width, depth, mlp width, patch, grid) -> timm model name of the paper's ViT sizes.
TIMM_MODELS = {
    (384, 12, 1536, 16, 14): "vit_small_patch16_224",
    (768, 12, 3072, 16, 14): "vit_base_patch16_224",
    (1024, 24, 4096, 16, 14): "vit_large_patch16_224",
}


def encoder_geometry(state_dict: dict) -> dict:
    """Width, depth, MLP width, patch size and patch grid of a timm-named ViT encoder."""
    width = state_dict["pos_embed"].shape[-1]
    n_grid = state_dict["pos_embed"].shape[1] - 1  # one cls token
    return dict(
        width=width,
        depth=len({k.split(".")[1] for k in state_dict if k.startswith("blocks.")}),
        mlp=state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        patch=state_dict["patch_embed.proj.weight"].shape[-1],
        grid=math.isqrt(n_grid),
    )


def check_loads_in_timm(state_dict: dict, src: str) -> str:
    """Load ``state_dict`` into the matching timm ViT (meta device) strictly; return its name.

    The paper's sizes map to ``vit_{small,base,large}_patch16_224``; other geometries (e.g. the
    CPU toy models) are checked against a ``VisionTransformer`` of the same shapes. The number
    of heads is not in the weights, so it is not checked.
    """
    try:
        import timm
        from timm.models.vision_transformer import VisionTransformer
    except ImportError as exc:
        raise SystemExit(f'--to timm needs timm ({exc}): pip install "lut-plugin[timm]"') from exc

    geo = encoder_geometry(state_dict)
    key = (geo["width"], geo["depth"], geo["mlp"], geo["patch"], geo["grid"])
    name = TIMM_MODELS.get(key)
    with torch.device("meta"):
        if name is not None:
            model = timm.create_model(name, pretrained=False, num_classes=0)
        else:
            model = VisionTransformer(
                img_size=geo["grid"] * geo["patch"],
                patch_size=geo["patch"],
                embed_dim=geo["width"],
                depth=geo["depth"],
                num_heads=1,  # shapes do not depend on it
                mlp_ratio=geo["mlp"] / geo["width"],
                num_classes=0,
            )
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{src!r}: the exported encoder does not load into timm "
            f"{name or 'VisionTransformer'} {geo}: {exc}"
        ) from exc
    return name or (
        f"VisionTransformer(img_size={geo['grid'] * geo['patch']}, patch_size={geo['patch']}, "
        f"embed_dim={geo['width']}, depth={geo['depth']}, "
        f"mlp_ratio={geo['mlp'] / geo['width']:g}, num_heads=<as trained>)"
    )


def convert_to_timm(
    src: str, dst: str, encoder: str = "student", unsafe_load: bool = False
) -> tuple[dict, str]:
    """Write the chosen encoder of ``src`` under timm key names; return it and the timm model."""
    suffix = osp.splitext(dst)[1]
    if suffix not in {".safetensors", ".pth", ".pt"}:
        raise ValueError(f"--to timm writes .safetensors, .pth or .pt files, got {dst!r}")
    encoder_sd = _vit_encoder(load_checkpoint_file(src, unsafe=unsafe_load), encoder, src)
    # safetensors wants contiguous tensors that share no storage.
    state_dict = {
        k: v.detach().clone().contiguous() for k, v in encoder_to_timm(encoder_sd).items()
    }
    timm_model = check_loads_in_timm(state_dict, src)
    if suffix == ".safetensors":
        from safetensors.torch import save as safetensors_bytes

        meta = dict(source=osp.abspath(src), encoder=encoder, timm_model=timm_model)
        atomic_write(dst, safetensors_bytes(state_dict, metadata=meta))
    else:
        save(state_dict, dst)
    return state_dict, timm_model


def main(argv=None) -> None:
    args = parse_args(argv)
    if osp.exists(args.dst):
        if osp.exists(args.src) and osp.samefile(args.src, args.dst):
            raise SystemExit(f"error: {args.dst} is the source checkpoint itself")
        if not args.force:
            raise SystemExit(f"error: {args.dst} exists; pass --force to replace it")
    if args.to == "timm":
        state_dict, timm_model = convert_to_timm(args.src, args.dst, args.encoder, args.unsafe_load)
        print(
            f"wrote {args.dst}: {args.encoder} encoder of {args.src}, {len(state_dict)} tensors; "
            f"loads strictly into timm {timm_model} (num_classes=0)"
        )
        return
    if args.from_ == "timm":
        state_dict = convert_from_timm(args.src, args.dst, args.teacher_key, args.unsafe_load)
        print(f"wrote {args.dst}: {len(state_dict)} tensors from {args.src}")
        return
    state_dict = convert(args.src, args.dst, args.encoder, args.unsafe_load)
    n_layers = len({k.split(".")[1] for k in state_dict if k.startswith("layers.")})
    width = state_dict["pos_embed"].shape[-1]
    print(
        f"wrote {args.dst}: {args.encoder} encoder of {args.src}, {len(state_dict)} tensors, "
        f"{n_layers} blocks, width {width}"
    )


if __name__ == "__main__":
    main()
