"""Attention maps, mean attention distance and feature spectrum of pre-trained encoders.

The LUT paper's analyses (supplementary Figs. A/B, attention distance per layer, singular
value spectrum) of several checkpoints (``--encoder teacher``: the momentum teachers)::

    python tools/analysis/encoder_analysis.py --model MAE MAE_CONFIG MAE_CKPT \\
        --model LUT LUT_CONFIG LUT_CKPT --images data/generated/toy_shapes/val

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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # a checkout, not installed
import lut_plugin  # noqa: E402,F401  (registers the components)
from lut_plugin.evaluation import attention, features, metrics  # noqa: E402


def load_encoder(config: str, checkpoint: str, encoder: str = "student",
                 unsafe_load: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:  # fmt: skip
    """The config's encoder, loaded strictly from a pre-training checkpoint, and the config's
    data preprocessor (the normalisation the encoder was trained with)."""
    return features.load_encoder(config, checkpoint, encoder, unsafe=unsafe_load)


def load_images(folder: Path, size: int, limit: int) -> np.ndarray:
    """Up to ``limit`` RGB images (sorted by path) resized to ``size``, ``(N, H, W, 3)`` uint8."""
    from PIL import Image

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not paths:
        raise FileNotFoundError(f"no .png/.jpg images under {folder}")
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC))
                     for p in paths[:limit]])  # fmt: skip


@torch.no_grad()
def analyse(encoder: torch.nn.Module, x: torch.Tensor) -> dict:
    """Last-block attention maps, attention distance per block and head, pooled features."""
    with attention.capture_attention(encoder) as maps:
        pooled = features.encoder_features(encoder, [(x, torch.zeros(len(x)))])[0]["mean"]
    grid = tuple(encoder.patch_resolution)
    patch = x.shape[-1] // grid[1]
    distance = torch.stack([attention.mean_attention_distance(a, grid, patch) for a in maps])
    return dict(last=maps[-1], distance=distance, pooled=pooled, grid=grid)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", nargs=3, action="append", required=True,
                   metavar=("LABEL", "CONFIG", "CKPT"))  # fmt: skip
    p.add_argument("--encoder", choices=["student", "teacher"], default="student")
    p.add_argument("--unsafe-load", action="store_true", help="unpickle fully (trusted)")
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--num-images", type=int, default=256)
    p.add_argument("--show", type=int, default=0, help="index of the image to show")
    p.add_argument("--query", type=int, nargs=2, default=(0, 0), metavar=("ROW", "COL"),
                   help="query patch (default: top-left, i.e. background)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("work_dirs/analysis"))
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, images = {}, {}
    for label, config, ckpt in args.model:
        encoder, preprocessor = load_encoder(config, ckpt, args.encoder, args.unsafe_load)
        size = features.encoder_input_size(encoder)
        if size not in images:  # read once per input size, not once per model
            images[size] = load_images(args.images, size, args.num_images)
        x = torch.from_numpy(images[size]).permute(0, 3, 1, 2).float()  # RGB, as preprocessor.mean
        results[label] = analyse(encoder, (x - preprocessor.mean) / preprocessor.std)
    raw, grid = images[size][args.show], results[label]["grid"]
    (qr, qc), heads = args.query, max(r["last"].shape[1] for r in results.values())
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. last-block attention of the query patch, every head (Figs. A/B)
    fig, axes = plt.subplots(len(results), heads + 1, squeeze=False,
                             figsize=(1.6 * (heads + 1), 1.7 * len(results)))  # fmt: skip
    ph, pw = raw.shape[0] / grid[0], raw.shape[1] / grid[1]
    for row, (label, r) in enumerate(results.items()):
        axes[row, 0].imshow(raw)
        axes[row, 0].add_patch(plt.Rectangle((qc * pw, qr * ph), pw, ph, fill=False, ec="red"))
        axes[row, 0].set_ylabel(label)
        attn = r["last"][args.show, :, 1 + qr * grid[1] + qc, 1:].reshape(-1, *grid)
        for h in range(attn.shape[0]):
            axes[row, h + 1].imshow(attn[h], cmap="inferno")
            axes[0, h + 1].set_title(f"head {h}", fontsize=8)
    plt.setp(axes, xticks=[], yticks=[])
    fig.suptitle(f"last-block attention of the red query patch ({args.encoder} encoders)")
    fig.tight_layout()
    fig.savefig(args.out / "attention_maps.png", dpi=130)

    # 2. mean attention distance per block (dots: heads, line: mean); 3. spectrum
    (fig2, ax2), (fig3, ax3) = (plt.subplots(figsize=(5, 3.5)) for _ in range(2))
    summary = {}
    for i, (label, r) in enumerate(results.items()):
        d, erank = r["distance"], metrics.effective_rank(r["pooled"])
        blocks = np.arange(1, len(d) + 1)
        x = np.repeat(blocks, d.shape[1]) + 0.1 * (i - 0.5)
        ax2.scatter(x, d.flatten(), s=8, color=f"C{i}", alpha=0.5)
        ax2.plot(blocks, d.mean(1), color=f"C{i}", label=label)
        s = metrics.singular_value_spectrum(r["pooled"])
        ax3.semilogy(np.arange(1, len(s) + 1), s, color=f"C{i}",
                     label=f"{label} (effective rank {erank:.1f})")  # fmt: skip
        summary[label] = dict(mean_attention_distance_per_layer=d.mean(1).tolist(),
                              effective_rank=erank)  # fmt: skip
    ax2.set(xticks=blocks, xlabel="block", ylabel="mean attention distance (pixels)")
    ax3.set(xlabel="index", ylabel="normalised singular value",
            title=f"spectrum of mean-pooled features, {len(images[size])} images")  # fmt: skip
    for fig, ax, name in ((fig2, ax2, "attention_distance"), (fig3, ax3, "spectrum")):
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / f"{name}.png", dpi=130)
    (args.out / "summary.json").write_text(text := json.dumps(summary, indent=2))
    print(text)


if __name__ == "__main__":
    main()
