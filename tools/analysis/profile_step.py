"""Where the time of one LUT / MAE training step goes, by kernel (GPU) or operator (CPU).

Profiles ``--steps`` training steps (forward, backward, AdamW, EMA) of the same models that
``benchmark_lut_vs_mae.py`` builds, with ``torch.profiler``, and prints per model the time
per step in each kernel category and the top kernels::

    python tools/analysis/profile_step.py --size vit-b --batch 512 --device cuda --amp
    python tools/analysis/profile_step.py ... --compile blocks  # loss / step: the whole loss / step
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_lut_vs_mae import (  # noqa: E402
    ROOT,
    SDPA_BACKENDS,
    SIZES,
    TrainingStep,
    use_sdpa_backend,
)

# First matching pattern wins; names are CUDA kernel names (GPU) or aten operators (CPU).
CATEGORIES = [
    ("gemm", r"gemm|nvjet|cutlass|xmma|matmul|cublas|aten::(mm|addmm|bmm|linear)$"),
    ("attention", r"flash|fmha|attention|sdpa"),
    ("norm", r"norm"),
    ("optimizer + EMA", r"foreach|adam|lerp"),
    ("copy / cast", r"copy|cast|fill"),
    ("index / gather", r"gather|scatter|index|sort|topk"),
]


def category(name: str) -> str:
    return next((c for c, p in CATEGORIES if re.search(p, name, re.I)), "other elementwise")


def profile_model(kind: str, args: argparse.Namespace) -> dict:
    """Per-step times (ms) by category and the top kernels of one model's training step."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    step = TrainingStep(kind, args.size, args.batch, device, args.amp, args.fuse_teacher_gelu)
    if args.compile:
        step.compile(args.compile, backend=args.compile_backend)
    for i in range(args.warmup):
        step(i)
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda
    with profile(activities=activities) as prof:
        for i in range(args.steps):
            step(i)
        if cuda:
            torch.cuda.synchronize()
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr) > 0]
    if cuda:  # kernels only, not the CPU side of the launches
        events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    per_step = {e.key: getattr(e, attr) / 1e3 / args.steps for e in events}  # ms
    by_category = defaultdict(float)
    for name, ms in per_step.items():
        by_category[category(name)] += ms
    top = sorted(per_step.items(), key=lambda kv: -kv[1])[: args.top]
    return {
        "model": kind,
        "total_ms": sum(per_step.values()),
        "categories_ms": dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
        "top_ms": dict(top),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument("--compile", choices=["blocks", "loss", "step"], help="profile compiled")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=20, help="kernels listed per model")
    parser.add_argument("--fuse-teacher-gelu", action="store_true", help="LUT's option")
    parser.add_argument("--sdpa-backend", choices=SDPA_BACKENDS, help="the only attention backend")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    use_sdpa_backend(args.sdpa_backend)
    sys.path.insert(0, str(ROOT))
    import lut_plugin  # noqa: F401

    results = []
    for kind in ("mae", "lut"):
        r = profile_model(kind, args)
        results.append(r)
        unit = "GPU kernel" if args.device.startswith("cuda") else "CPU operator"
        mode = f", compiled {args.compile}" if args.compile else ""
        print(
            f"\n## {kind} {args.size}, batch {args.batch}{mode}: {r['total_ms']:.1f} ms {unit} time"
        )
        for name, ms in r["categories_ms"].items():
            print(f"  {name:20s} {ms:8.2f} ms  {100 * ms / r['total_ms']:5.1f} %")
        for name, ms in r["top_ms"].items():
            print(f"  {ms:8.2f} ms  {name[:110]}")
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
