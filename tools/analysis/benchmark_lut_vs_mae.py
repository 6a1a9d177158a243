"""Training-step time and peak memory of LUT vs the upstream MAE, side by side.

Both models share the encoder, decoder and reconstruction head of the given
mmpretrain config; LUT adds the second view, the projector/predictor and the
momentum teacher. Each (model, size) runs in its own subprocess (clean peak
memory), interleaved MAE / LUT over several rounds so that machine noise hits
both alike. Reports medians and LUT/MAE ratios as JSON, Markdown and a PNG.

    python tools/analysis/benchmark_lut_vs_mae.py --sizes tiny vit-s --batch 8 \
        --out docs/benchmarks/cpu
    python tools/analysis/benchmark_lut_vs_mae.py --device cuda --amp --sizes vit-b --batch 128
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZES = {
    # name: (config, overrides applied to model)
    "tiny": "configs/mmpretrain/lut_vit-tiny_toy_cpu.py",
    "vit-s": "configs/mmpretrain/lut_vits_400e.py",
    "vit-b": "configs/mmpretrain/lut_vitb_400e.py",
    "vit-l": "configs/mmpretrain/lut_vitl_400e.py",
}


def _worker(args: argparse.Namespace) -> dict:
    """Run inside a subprocess: time ``steps`` optimiser steps of one model."""
    import resource

    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import lut_plugin  # noqa: F401

    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = Config.fromfile(str(ROOT / SIZES[args.size]))
    model_cfg = cfg.model.to_dict()
    for part in ("projector", "predictor"):
        if model_cfg.get(part, {}).get("norm") == "syncbn":
            model_cfg[part]["norm"] = "bn"  # single process
    if args.model == "mae":
        model_cfg = dict(
            type="MAE",
            backbone={**model_cfg["backbone"], "type": "MAEViT"},
            neck=model_cfg["neck"],
            head=model_cfg["head"],
        )
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
    img = cfg.model.backbone.get("img_size", 224)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x1 = torch.randn(args.batch, 3, img, img, generator=gen).to(device)
    x2 = torch.randn(args.batch, 3, img, img, generator=gen).to(device)
    inputs = [x1, x2] if args.model == "lut" else x1
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

    def step(i: int) -> None:
        with amp:
            losses = model.loss(inputs, data_samples=None)
        loss = sum(losses.values())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if args.model == "lut":
            model.update_teacher(i, 10_000)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    # Memory held before the first step: weights, teacher copy, inputs.
    base = torch.cuda.memory_allocated() / 2**20 if device.type == "cuda" else rss_mib()
    for i in range(args.warmup):
        step(i)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        step(i)
        sync()
        times.append(time.perf_counter() - t0)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": args.model,
        "size": args.size,
        "median_step_s": statistics.median(times),
        "images_per_s": args.batch / statistics.median(times),
        "peak_mib": peak,
        "step_mib": peak - base,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "vit-s"], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument("--out", default="docs/benchmarks/cpu")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the PNG from --out's JSON"
    )
    parser.add_argument("--worker", choices=["mae", "lut"], help=argparse.SUPPRESS, dest="model")
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model:
        print(json.dumps(_worker(args)))
        return
    if args.replot:
        saved = json.loads((ROOT / args.out / "lut_vs_mae.json").read_text())
        kind = "peak CUDA MiB" if saved["meta"]["device"].startswith("cuda") else "peak RSS MiB"
        _plot(saved["rows"], ROOT / args.out / "lut_vs_mae.png", kind, saved["meta"])
        return

    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for size in args.sizes:
            for model in ("mae", "lut"):
                cmd = [
                    sys.executable, __file__, "--worker", model, "--size", size,
                    "--batch", str(args.batch), "--steps", str(args.steps),
                    "--warmup", str(args.warmup), "--device", args.device,
                ] + (["--amp"] if args.amp else [])  # fmt: skip
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                if out.returncode != 0:
                    sys.exit(f"benchmark worker failed ({model}, {size}):\n{out.stderr[-3000:]}")
                results.setdefault((size, model), []).append(
                    json.loads(out.stdout.splitlines()[-1])
                )

    rows = []
    for size in args.sizes:
        mae, lut = (results[(size, m)] for m in ("mae", "lut"))
        med = {
            m: {
                k: statistics.median(r[k] for r in runs)
                for k in ("median_step_s", "peak_mib", "step_mib")
            }
            for m, runs in (("mae", mae), ("lut", lut))
        }
        rows.append(
            {
                "size": size,
                "batch": args.batch,
                "mae_step_s": med["mae"]["median_step_s"],
                "lut_step_s": med["lut"]["median_step_s"],
                "time_ratio": med["lut"]["median_step_s"] / med["mae"]["median_step_s"],
                "mae_peak_mib": med["mae"]["peak_mib"],
                "lut_peak_mib": med["lut"]["peak_mib"],
                "memory_ratio": med["lut"]["peak_mib"] / med["mae"]["peak_mib"],
                "mae_step_mib": med["mae"]["step_mib"],
                "lut_step_mib": med["lut"]["step_mib"],
                "step_memory_ratio": med["lut"]["step_mib"] / med["mae"]["step_mib"],
                "mae_params_m": mae[0]["params_m"],
                "lut_params_m": lut[0]["params_m"],
            }
        )
    out_dir = ROOT / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"device": args.device, "amp": args.amp, "steps": args.steps, "rounds": args.rounds}
    (out_dir / "lut_vs_mae.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    # "training MiB": peak minus what the process held before the first step.
    mem_kind = "peak CUDA MiB" if args.device.startswith("cuda") else "peak RSS MiB"
    lines = [
        f"device {args.device}, amp {args.amp}, {args.steps} timed steps x {args.rounds} rounds",
        "",
        f"| size | batch | MAE s/step | LUT s/step | LUT/MAE time | MAE {mem_kind} "
        f"| LUT {mem_kind} | LUT/MAE memory | MAE training MiB | LUT training MiB "
        "| LUT/MAE training memory |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['batch']} | {r['mae_step_s']:.4f} | {r['lut_step_s']:.4f} "
            f"| {r['time_ratio']:.2f} | {r['mae_peak_mib']:.0f} | {r['lut_peak_mib']:.0f} "
            f"| {r['memory_ratio']:.2f} | {r['mae_step_mib']:.0f} | {r['lut_step_mib']:.0f} "
            f"| {r['step_memory_ratio']:.2f} |"
        )
    (out_dir / "lut_vs_mae.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(rows, out_dir / "lut_vs_mae.png", mem_kind, meta)


def _plot(rows: list[dict], path: Path, mem_kind: str, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = range(len(rows))
    for ax, key, label in (
        (axes[0], "step_s", "seconds per training step"),
        (axes[1], "step_mib", "MiB above weights"),
    ):
        ax.set_yscale("log")  # sizes differ by orders of magnitude
        mae = [r[f"mae_{key}"] for r in rows]
        lut = [r[f"lut_{key}"] for r in rows]
        ax.bar([x - 0.2 for x in xs], mae, 0.4, label="MAE")
        ax.bar([x + 0.2 for x in xs], lut, 0.4, label="LUT")
        for x, a, b in zip(xs, mae, lut):
            ax.annotate(f"x{b / a:.2f}", (x + 0.2, b), ha="center", va="bottom", fontsize=9)
        ax.set_xticks(list(xs), [f"{r['size']}\nbatch {r['batch']}" for r in rows])
        ax.set_ylabel(label)
        ax.legend()
    axes[1].set_title(f"training memory ({mem_kind} minus weights)", fontsize=9)
    axes[0].set_title("step time (forward, backward, AdamW, EMA)", fontsize=9)
    fig.suptitle(f"LUT vs MAE, device {meta['device']}, amp {meta['amp']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
