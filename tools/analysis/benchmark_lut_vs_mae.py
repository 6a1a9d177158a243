"""LUT vs the upstream MAE, side by side: the training step and the data pipeline.

Step (``--parts step``): FLOPs, time, TFLOP/s, memory and first loss of a training step of
both models (the config's encoder, decoder and head), each in its own process, medians over
``--rounds``. Data (``--parts data``): MAE's pipeline, LUT's and LUT's with view 2's colour
operations left to the device, on one pinned core (ms per transform) and in a ``DataLoader``
of ``--workers``. Writes ``lut_vs_mae.{json,md}`` to ``--out``. See docs/results/speed.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
SIZES = {size: f"configs/mmpretrain/{name}.py" for size, name in (
    ("tiny", "lut_vit-tiny_toy_cpu"), ("vit-s", "lut_vits_400e"), ("vit-b", "lut_vitb_400e"),
    ("vit-l", "lut_vitl_400e"))}  # fmt: skip
SDPA_BACKENDS = ("flash", "mem_efficient", "cudnn", "math")
MAE_CONFIG = ROOT / "configs/mmpretrain/mae_vitb_100e.py"  # upstream MAE's data pipeline


def use_sdpa_backend(name: str | None) -> None:
    """Leave only this ``scaled_dot_product_attention`` backend on (``None``: torch's choice)."""
    for backend in SDPA_BACKENDS if name else ():
        getattr(torch.backends.cuda, f"enable_{backend}_sdp")(backend == name)


def extra_flop_formulas() -> dict:
    """``FlopCounterMode`` formulas torch lacks (the count must not depend on device or options):
    CPU attention, ``torch._addmm_activation`` (the fused teacher GELU's ``addmm``)."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    return {
        aten._scaled_dot_product_flash_attention_for_cpu:
            lambda q, k, v, *a, out_shape=None, **kw: fc.sdpa_flop_count(q, k, v),
        aten._scaled_dot_product_flash_attention_for_cpu_backward:
            lambda g, q, k, v, *a, out_shape=None, **kw: fc.sdpa_backward_flop_count(g, q, k, v),
        aten._addmm_activation: lambda b, x, w, *a, out_shape=None, **kw: fc.addmm_flop(b, x, w),
    }  # fmt: skip


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """1/f^1.2 colour noise: JPEG sizes (about 90 KB at quality 90) and decode times of a
    photo, not of white noise."""
    rng = np.random.default_rng(seed)
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None])
    freq[0, 0] = np.inf
    img = np.fft.irfft2(np.exp(2j * np.pi * rng.random((3, *freq.shape))) / freq**1.2, (h, w))
    return np.clip(img.transpose(1, 2, 0) / img.std() * 45 + 120, 0, 255).astype(np.uint8)


def step_worker(args: argparse.Namespace) -> dict:
    """In a subprocess: FLOPs, step time, memory and first loss of one model's training step."""
    import resource

    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from torch.utils.flop_counter import FlopCounterMode

    import lut_plugin  # noqa: F401
    from lut_plugin.evaluation.features import encoder_input_size
    from lut_plugin.runtime.compat import python_drop_rates
    from lut_plugin.runtime.hooks import compile_transformer_blocks

    torch.set_num_threads(args.threads or torch.get_num_threads())
    use_sdpa_backend(args.sdpa_backend)
    device, cuda = torch.device(args.device), args.device.startswith("cuda")
    cfg = Config.fromfile(str(ROOT / SIZES[args.size])).model.to_dict()
    for part in ("projector", "predictor"):
        cfg.get(part, {}).update(norm="bn")  # one process: no SyncBN
    if args.img_size:
        cfg["backbone"]["img_size"] = args.img_size
        cfg["neck"]["num_patches"] = (args.img_size // cfg["backbone"].get("patch_size", 16)) ** 2
    if args.step_worker == "mae":
        cfg = dict(type="MAE", backbone=dict(cfg["backbone"], type="MAEViT"), neck=cfg["neck"],
                   head=cfg["head"])  # fmt: skip
    else:
        cfg.update(fuse_teacher_gelu=args.fuse_teacher_gelu)
        cfg["backbone"]["with_cp"] = args.with_cp
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.to(device).train()
    size = encoder_input_size(model.backbone)
    views = torch.randn(2, args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    inputs = list(views.to(device)) if args.step_worker == "lut" else views[0].to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=cuda)
    loss = model.loss

    def update() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            total = sum(loss(inputs, data_samples=None).values())
        total.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        return total.detach()

    def memory_mib() -> float:  # the peak
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return torch.cuda.max_memory_allocated() / 2**20 if cuda else rss

    base = torch.cuda.memory_allocated() / 2**20 if cuda else memory_mib()  # weights, inputs
    with FlopCounterMode(display=False, custom_mapping=extra_flop_formulas()) as counter:
        first_loss = update()  # eager; AdamW's elementwise operations count no FLOPs
    flops = counter.get_total_flops()
    result = dict(flops_per_image=flops / args.batch, first_loss=first_loss.item(),
                  params_m=sum(p.numel() for p in model.parameters()) / 1e6)  # fmt: skip
    if args.flops_only:
        return result
    if args.mode == "compiled":
        if args.compile_scope == "blocks":
            compile_transformer_blocks(model, backend=args.compile_backend)
        else:
            python_drop_rates(model)
            compiled = torch.compile(loss if args.compile_scope == "loss" else update,
                                     backend=args.compile_backend)  # fmt: skip
            loss, update = (compiled, update) if args.compile_scope == "loss" else (loss, compiled)
    times = []
    for i in range(args.warmup + args.steps):
        if i == args.warmup and cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        update()
        if args.step_worker == "lut":
            model.update_teacher(i, 10_000)
        torch.cuda.synchronize() if cuda else None
        times.append(time.perf_counter() - start)
    median = statistics.median(times[args.warmup :])
    return dict(result, step_s=median, images_per_s=args.batch / median,
                tflops_per_s=flops / median / 1e12, peak_mib=memory_mib(),
                step_mib=memory_mib() - base)  # fmt: skip


def run_worker(args: argparse.Namespace, *extra: str) -> dict:
    """This script in a subprocess, with the parent's arguments and ``extra``."""
    out = subprocess.run([sys.executable, __file__, *args.argv, *extra], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"benchmark worker failed ({' '.join(extra)}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def median(values):
    """The median of numbers, or per key of dicts (recursively)."""
    values = list(values)
    if isinstance(values[0], dict):
        return {k: median(v.get(k, 0.0) for v in values) for k in values[0]}
    return statistics.median(values)


def step_part(args: argparse.Namespace) -> list[dict]:
    """One row per size: every figure of both models, medians over the rounds."""
    modes = ["eager", "compiled"] if args.compile and not args.flops_only else ["eager"]
    runs: dict[tuple, list[dict]] = {}
    for _ in range(1 if args.flops_only else args.rounds):  # interleaved
        for size, mode, model in itertools.product(args.sizes, modes, ("mae", "lut")):
            extra = ("--step-worker", model, "--size", size, "--mode", mode)
            runs.setdefault((size, mode, model), []).append(run_worker(args, *extra))
    rows = {size: dict(size=size, batch=args.batch) for size in args.sizes}
    for (size, mode, model), results in runs.items():
        prefix = f"{model}_{'compiled_' if mode == 'compiled' else ''}"
        stats = median(results)
        rows[size].update({prefix + k: v for k, v in stats.items()})
        if args.peak_tflops and not args.flops_only:
            rows[size][prefix + "peak_fraction"] = stats["tflops_per_s"] / args.peak_tflops
    return list(rows.values())


def time_transforms(pipeline, files: list[str]) -> dict:
    """Exclusive ms per image of every (nested) transform and photometric operation, and the
    ``total``, after a warm-up."""
    from lut_plugin.datasets import photometric

    times, stack = {}, []

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            stack.append(0.0)
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            elapsed, nested = time.perf_counter() - start, stack.pop()
            stack[-1:] = [stack[-1] + elapsed] if stack else []
            times[name] = times.get(name, 0.0) + (elapsed - nested) * 1e3 / len(files)
            return result

        return wrapper

    def visit(t) -> None:
        if hasattr(t, "transform"):
            t.transform = timed(type(t).__name__, t.transform)
        for child in getattr(t, "transforms", None) or getattr(t, "pipelines", None) or []:
            visit(child)

    visit(pipeline)
    ops = ("adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue",
           "grayscale", "solarize", "gaussian_blur")  # fmt: skip
    ops = {op: timed(f"photometric.{op}", getattr(photometric, op)) for op in ops}
    jitter = tuple(ops[f.__name__] for f in photometric._JITTER)  # what distort() calls
    with mock.patch.multiple(photometric, _JITTER=jitter, **ops):
        for path in files[:8]:  # warm-up
            pipeline(dict(img_path=path))
        times.clear()
        start = time.perf_counter()
        for path in files:
            pipeline(dict(img_path=path))
    return dict(times, total=(time.perf_counter() - start) * 1e3 / len(files))


def data_worker(args: argparse.Namespace) -> dict:
    """In a subprocess: each pipeline on one pinned core (images/s, ms per transform), then in
    a DataLoader on every core."""
    import cv2
    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope

    from lut_plugin.datasets import lut_view_pipelines

    cpus, size = sorted(os.sched_getaffinity(0)), args.img_size or 224
    os.sched_setaffinity(0, {cpus[0]})
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    init_default_scope("mmpretrain")
    mae = Config.fromfile(str(MAE_CONFIG)).train_dataloader.dataset.pipeline
    configs = dict(mae=[dict(t, scale=size) if "scale" in t else t for t in mae],
                   lut=lut_view_pipelines(size)[2],
                   lut_device=lut_view_pipelines(size, photometric_on_device=True)[2])  # fmt: skip
    files, result = json.loads(Path(args.files).read_text()), {}
    for name, config in configs.items():  # (the timing wrappers cost about 0.5 %)
        ms_per_image = time_transforms(Compose(config), files)
        result[name] = dict(images_per_s=1e3 / ms_per_image.pop("total"), ms_per_image=ms_per_image)
    os.sched_setaffinity(0, cpus)  # the DataLoader's workers inherit it
    cv2.setNumThreads(0)
    for name, config in configs.items():
        pipeline, total = Compose(config), (args.loader_batches + 1) * args.loader_batch
        paths = [dict(img_path=files[i % len(files)]) for i in range(total)]
        batches = iter(torch.utils.data.DataLoader(
            paths, args.loader_batch, num_workers=args.workers,
            collate_fn=lambda b, p=pipeline: default_collate(list(map(p, b)))))  # fmt: skip
        next(batches)  # start-up
        start = time.perf_counter()
        count = sum(len(b["inputs"][0]) for b in batches)
        result[name]["loader_images_per_s"] = count / (time.perf_counter() - start)
    return result


def data_part(args: argparse.Namespace) -> dict:
    """Medians over ``--rounds`` worker processes of every figure."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(map(str, Path(args.data_dir or tmp).rglob("*.*")))[: args.data_images]
        for seed in range(0 if args.data_dir else args.data_images):
            files.append(f"{tmp}/{seed:05d}.jpg")
            Image.fromarray(photo(375, 500, seed)).save(files[-1], quality=90)
        Path(tmp, "files.json").write_text(json.dumps(files))
        runs = [run_worker(args, "--data-worker", "--files", f"{tmp}/files.json")
                for _ in range(args.rounds)]  # fmt: skip
    return dict(images=len(files), source=args.data_dir or "generated 500x375 JPEGs",
                img_size=args.img_size or 224, workers=args.workers,
                pipelines=median(runs))  # fmt: skip


def markdown(meta: dict, rows: list[dict], data: dict | None) -> str:
    """Per size: MAE, LUT and LUT/MAE of every step figure; per pipeline: the data figures."""
    lines = [f"{meta['device']}: {' '.join(meta['options']['argv'])}", ""]
    for row in rows:
        lines += [f"| {row['size']}, batch {row['batch']} | MAE | LUT | LUT/MAE |", "|---" * 4]
        for key in (k[4:] for k in row if k.startswith("lut_")):
            mae, lut = row[f"mae_{key}"], row[f"lut_{key}"]
            ratio = f"{lut / mae:.2f}" if mae else "—"  # e.g. a time below the clock's tick
            lines.append(f"| {key} | {mae:.4g} | {lut:.4g} | {ratio} |")
        lines.append("")
    if data:
        flat = {n: {**v, **v["ms_per_image"]} for n, v in data["pipelines"].items()}
        lines += [f"{data['images']} {data['source']}, {data['img_size']} px views, "
                  f"{data['workers']} DataLoader workers", "",
                  "| | " + " | ".join(flat) + " |", "|---" * (len(flat) + 1) + "|"]  # fmt: skip
        for key in sorted({k for v in flat.values() for k in v} - {"ms_per_image"}):
            cells = (f"{v[key]:.3f}" if key in v else "" for v in flat.values())
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", default=["step", "data"], choices=["step", "data"])
    p.add_argument("--sizes", nargs="+", default=["tiny", "vit-s"], choices=sorted(SIZES))
    ints = dict(batch=8, steps=5, warmup=2, rounds=2, data_images=64, workers=2, loader_batch=32,
                loader_batches=8)  # fmt: skip
    for name, default in ints.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--compile", action="store_true", help="also time the compiled step")
    p.add_argument("--compile-scope", choices=["blocks", "loss", "step"], default="blocks")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("--fuse-teacher-gelu", action="store_true", help="LUT's option")
    p.add_argument("--with-cp", action="store_true", help="LUT's activation checkpointing")
    p.add_argument("--sdpa-backend", choices=SDPA_BACKENDS, help="the only attention backend")
    p.add_argument("--flops-only", action="store_true", help="count FLOPs, no timing")
    p.add_argument("--peak-tflops", type=float, help="the device's peak, for the fraction")
    p.add_argument("--data-dir", help="images to use instead of generated JPEGs")
    p.add_argument("--img-size", type=int, help="side of the views (data: 224, step: config's)")
    p.add_argument("--out", type=Path, default=Path("work_dirs/bench"))
    for hidden in ("--step-worker", "--size", "--files", "--mode"):  # the subprocesses'
        p.add_argument(hidden, help=argparse.SUPPRESS)
    p.add_argument("--data-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.step_worker or args.data_worker:
        print(json.dumps(step_worker(args) if args.step_worker else data_worker(args)))
        return
    cuda = args.device.startswith("cuda")
    name = torch.cuda.get_device_name(args.device) if cuda else f"{os.cpu_count()} CPUs"
    meta = dict(device=name, load_average_start=os.getloadavg()[0], options=vars(args))
    rows = step_part(args) if "step" in args.parts else []
    data = data_part(args) if "data" in args.parts else None
    meta["load_average_end"] = os.getloadavg()[0]  # other processes on the machine
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lut_vs_mae.md").write_text(report := markdown(meta, rows, data))
    (args.out / "lut_vs_mae.json").write_text(json.dumps(dict(meta=meta, rows=rows, data=data),
                                                         indent=2, default=str))  # fmt: skip
    print(report)


if __name__ == "__main__":
    main()
