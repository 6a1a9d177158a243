"""Attention maps, mean attention distance and feature spectrum of pre-trained encoders.

The analyses of the LUT paper (supplementary Figs. A/B; singular value spectrum;
attention distance per layer), side by side for several checkpoints::

    python tools/analysis/encoder_analysis.py \
        --model MAE configs/mmpretrain/mae_vit-tiny_toy_cpu.py \
            work_dirs/mae_vit-tiny_toy_cpu/epoch_50.pth \
        --model LUT configs/mmpretrain/lut_vit-tiny_toy_cpu.py \
            work_dirs/lut_vit-tiny_toy_cpu/epoch_50.pth \
        --images data/generated/toy_shapes/val --out work_dirs/analysis

Each ``--model`` takes a label, the pre-training config (for the encoder
architecture) and a checkpoint; ``--encoder teacher`` reads the momentum teacher.
Writes ``attention_maps.png``, ``attention_distance.png``, ``spectrum.png`` and
``summary.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lut_plugin.analysis import (  # noqa: E402
    capture_attention,
    effective_rank,
    mean_attention_distance,
    singular_value_spectrum,
)
from lut_plugin.mmpretrain import evaluation  # noqa: E402

MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


def load_encoder(
    config: str, checkpoint: str, encoder: str = "student", unsafe_load: bool = False
) -> torch.nn.Module:
    """The config's encoder, loaded strictly from a pre-training checkpoint (evaluation mode)."""
    return evaluation.load_encoder(config, checkpoint, encoder, unsafe=unsafe_load)[0]


def load_images(folder: Path, size: int, limit: int) -> tuple[torch.Tensor, np.ndarray]:
    """Up to ``limit`` images (sorted by path), resized to ``size``; normalised and raw."""
    from PIL import Image

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not paths:
        raise FileNotFoundError(f"no .png/.jpg images under {folder}")
    raw = np.stack(
        [
            np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC))
            for p in paths[:limit]
        ]
    )
    x = torch.from_numpy((raw - MEAN) / STD).permute(0, 3, 1, 2).float()
    return x, raw


@torch.no_grad()
def analyse(encoder: torch.nn.Module, x: torch.Tensor) -> dict:
    with capture_attention(encoder) as maps:
        tokens = evaluation.encoder_tokens(encoder)(x)
    grid = tuple(encoder.patch_resolution)
    patch = x.shape[-1] // grid[1]
    distance = torch.stack([mean_attention_distance(a, grid, patch) for a in maps])
    pooled = tokens[:, 1:].mean(dim=1)
    spectrum = singular_value_spectrum(pooled)
    return {"maps": maps, "distance": distance, "spectrum": spectrum, "grid": grid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", nargs=3, action="append", required=True, metavar=("LABEL", "CONFIG", "CKPT")
    )
    parser.add_argument("--encoder", choices=["student", "teacher"], default="student")
    parser.add_argument(
        "--unsafe-load", action="store_true", help="unpickle checkpoints fully (trusted files)"
    )
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--num-images", type=int, default=256)
    parser.add_argument("--show", type=int, default=0, help="index of the image to show")
    parser.add_argument(
        "--query", type=int, nargs=2, default=None, metavar=("ROW", "COL"),
        help="query patch (default: top-left patch, i.e. background)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("work_dirs/analysis"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, images = {}, {}
    for label, config, ckpt in args.model:
        encoder = load_encoder(config, ckpt, args.encoder, args.unsafe_load)
        size = evaluation.encoder_input_size(encoder)
        if size not in images:
            images[size] = load_images(args.images, size, args.num_images)
        x, raw = images[size]
        results[label] = analyse(encoder, x)
        results[label]["heads"] = results[label]["maps"][-1].shape[1]
    args.out.mkdir(parents=True, exist_ok=True)
    labels = list(results)
    grid = results[labels[0]]["grid"]
    qr, qc = args.query or (0, 0)
    q = 1 + qr * grid[1] + qc  # token index (cls first)

    # 1. last-block attention of the query patch, every head (Figs. A/B)
    heads = max(r["heads"] for r in results.values())
    fig, axes = plt.subplots(
        len(labels), heads + 1, figsize=(1.6 * (heads + 1), 1.7 * len(labels)), squeeze=False
    )
    for row, label in enumerate(labels):
        img = raw[args.show]
        axes[row, 0].imshow(img)
        ph, pw = img.shape[0] / grid[0], img.shape[1] / grid[1]
        axes[row, 0].add_patch(
            plt.Rectangle((qc * pw, qr * ph), pw, ph, fill=False, ec="red", lw=1.5)
        )
        axes[row, 0].set_ylabel(label)
        attn = results[label]["maps"][-1][args.show, :, q, 1:].reshape(-1, *grid)
        for h in range(heads):
            ax = axes[row, h + 1]
            if h < attn.shape[0]:
                ax.imshow(attn[h], cmap="inferno")
                if row == 0:
                    ax.set_title(f"head {h}", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"last-block attention of the red query patch ({args.encoder} encoders)")
    fig.tight_layout()
    fig.savefig(args.out / "attention_maps.png", dpi=130)

    # 2. mean attention distance per layer (dots: heads, line: mean)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for i, label in enumerate(labels):
        d = results[label]["distance"]
        layers = np.arange(1, d.shape[0] + 1)
        for h in range(d.shape[1]):
            ax.scatter(layers + 0.1 * (i - 0.5), d[:, h], s=8, color=f"C{i}", alpha=0.5)
        ax.plot(layers, d.mean(1), color=f"C{i}", label=label)
    ax.set_xticks(layers)
    ax.set_xlabel("block")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "attention_distance.png", dpi=130)

    # 3. singular value spectrum of the pooled features
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for i, label in enumerate(labels):
        s = results[label]["spectrum"]
        ax.semilogy(np.arange(1, len(s) + 1), s, color=f"C{i}",
                    label=f"{label} (effective rank {effective_rank(s):.1f})")  # fmt: skip
    ax.set_xlabel("index")
    ax.set_ylabel("normalised singular value")
    ax.set_title(f"spectrum of mean-pooled features, {x.shape[0]} images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "spectrum.png", dpi=130)

    summary = {
        label: {
            "mean_attention_distance_per_layer": r["distance"].mean(1).tolist(),
            "effective_rank": effective_rank(r["spectrum"]),
        }
        for label, r in results.items()
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
