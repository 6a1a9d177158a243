"""LUT vs the upstream MAE, side by side: training step and data pipeline.

Step (``--parts step``): time and peak memory of one training step (forward, backward,
AdamW, EMA), FLOPs per image counted with ``torch.utils.flop_counter.FlopCounterMode``
(forward + backward), achieved TFLOP/s and, with ``--peak-tflops``, the fraction of that
peak; with ``--compile`` also the step with compiled transformer blocks (``--compile-scope
loss``: the whole loss computation as one graph instead; ``step``: forward, backward and the
optimiser step as one compiled function). Both models share
the encoder, decoder and reconstruction head of the given mmpretrain config; LUT adds the
second view, the projector/predictor and the momentum teacher. Each (model, size, mode)
runs in its own subprocess (clean peak memory), interleaved MAE / LUT over several rounds
so that machine noise hits both alike.

Data (``--parts data``): images/s on one core (the worker is pinned to one CPU, one
thread) of LUT's two-view pipeline and MAE's one-view pipeline (``RandomResizedCrop`` +
flip) on generated ImageNet-sized JPEGs (or ``--data-dir``), milliseconds per transform,
the JPEG decoders (OpenCV vs PIL), and a PyTorch ``DataLoader`` with ``--workers``
processes. ``--baseline-root`` adds the LUT pipeline of another checkout of this
repository (e.g. a git worktree of an older commit) to the same interleaved rounds.

Writes ``lut_vs_mae.{json,md,png}`` to ``--out``::

    python tools/analysis/benchmark_lut_vs_mae.py --sizes tiny vit-s --batch 16 \\
        --out docs/benchmarks/cpu
    python tools/analysis/benchmark_lut_vs_mae.py --parts step --device cuda --amp \\
        --sizes vit-b --batch 256 --compile --peak-tflops 989 --out docs/benchmarks/h100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZES = {
    "tiny": "configs/mmpretrain/lut_vit-tiny_toy_cpu.py",
    "vit-s": "configs/mmpretrain/lut_vits_400e.py",
    "vit-b": "configs/mmpretrain/lut_vitb_400e.py",
    "vit-l": "configs/mmpretrain/lut_vitl_400e.py",
}
# MAE's pre-training pipeline (mmpretrain's configs/_base_/datasets/imagenet_bs512_mae.py).
MAE_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(
        type="RandomResizedCrop",
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        backend="pillow",
        interpolation="bicubic",
    ),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackInputs"),
]
# torch.backends.cuda.enable_<name>_sdp switches.
SDPA_BACKENDS = ("flash", "mem_efficient", "cudnn", "math")
# The view-2 operations, timed inside LUTPhotometricDistortion.
PHOTOMETRIC_OPS = (
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "grayscale",
    "solarize",
    "gaussian_blur",
)


# ---------------------------------------------------------------------------- step side
def _build_model(size: str, model_kind: str, fuse_teacher_gelu: bool = False):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(str(ROOT / SIZES[size]))
    model_cfg = cfg.model.to_dict()
    for part in ("projector", "predictor"):
        if model_cfg.get(part, {}).get("norm") == "syncbn":
            model_cfg[part]["norm"] = "bn"  # single process
    if model_kind == "mae":
        model_cfg = dict(
            type="MAE",
            backbone={**model_cfg["backbone"], "type": "MAEViT"},
            neck=model_cfg["neck"],
            head=model_cfg["head"],
        )
    elif fuse_teacher_gelu:
        model_cfg["fuse_teacher_gelu"] = True
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model, cfg.model.backbone.get("img_size", 224)


class TrainingStep:
    """One model's training step on fixed random views.

    ``forward_backward()`` runs ``self.loss`` (bf16 autocast with ``amp``) and its backward;
    calling the object with the iteration ``i`` adds AdamW (fused on GPUs, as the GPU
    configs) and, for LUT, the EMA update. ``self.loss`` (``model.loss``) and ``self.update``
    (forward, backward, optimiser step) may be replaced by compiled versions (:meth:`compile`).
    """

    def __init__(
        self, kind: str, size: str, batch: int, device, amp: bool, fuse_teacher_gelu: bool = False
    ) -> None:
        import torch

        torch.manual_seed(0)
        self.kind, self.amp, self.device = kind, amp, device
        self.model, img = _build_model(size, kind, fuse_teacher_gelu)
        self.model.to(device).train()
        self.loss = self.model.loss
        self.optim = torch.optim.AdamW(
            self.model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=device.type == "cuda"
        )
        gen = torch.Generator(device="cpu").manual_seed(0)
        x1 = torch.randn(batch, 3, img, img, generator=gen).to(device)
        x2 = torch.randn(batch, 3, img, img, generator=gen).to(device)
        self.inputs = [x1, x2] if kind == "lut" else x1

    def forward_backward(self) -> None:
        import torch

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            losses = self.loss(self.inputs, data_samples=None)
        sum(losses.values()).backward()

    def __call__(self, i: int) -> None:
        self.update()
        if self.kind == "lut":
            self.model.update_teacher(i, 10_000)

    def update(self) -> None:
        """Forward, backward and the optimiser step."""
        self.forward_backward()
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)

    def compile(self, scope: str, **compile_kwargs) -> None:
        """Compile the transformer blocks in place (``'blocks'``, what ``tools/train.py
        --compile`` does), the whole loss computation as one graph (``'loss'``), or forward,
        backward and the optimiser step as one function (``'step'``, as mmengine's
        ``compile`` config key compiles ``train_step``; the teacher's EMA update stays eager
        here)."""
        import torch

        from lut_plugin.mmpretrain.engine.hooks import (
            compile_transformer_blocks,
            python_drop_rates,
        )

        if scope == "blocks":
            if compile_transformer_blocks(self.model, **compile_kwargs) == 0:
                raise RuntimeError(f"no transformer block in {type(self.model).__name__}")
        else:
            python_drop_rates(self.model)
            if scope == "loss":
                self.loss = torch.compile(self.model.loss, **compile_kwargs)
            else:
                self.update = torch.compile(self.update, **compile_kwargs)


def use_sdpa_backend(name: str | None) -> None:
    """Leave only this ``scaled_dot_product_attention`` backend enabled (``None``: torch's
    choice). Set before compiling: the traced graph keeps the backend chosen then."""
    import torch

    if name:
        for backend in SDPA_BACKENDS:
            getattr(torch.backends.cuda, f"enable_{backend}_sdp")(backend == name)


def extra_flop_formulas() -> dict:
    """``FlopCounterMode`` formulas for the kernels torch does not count, so that the count
    depends neither on the device nor on the options: the CPU's attention (torch counts the
    CUDA kernels only) and ``torch._addmm_activation`` (``fuse_teacher_gelu``'s product with
    a GELU epilogue, counted as the ``addmm`` it replaces)."""
    import torch
    from torch.utils import flop_counter

    aten = torch.ops.aten

    def attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query, key, value)

    def attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)

    def addmm_activation(bias, mat1, mat2, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.addmm_flop(bias, mat1, mat2)

    return {
        aten._scaled_dot_product_flash_attention_for_cpu: attention,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: attention_backward,
        aten._addmm_activation: addmm_activation,
    }


def _step_worker(args: argparse.Namespace) -> dict:
    """Run inside a subprocess: FLOPs and timing of one model's training step."""
    import resource

    import torch
    from torch.utils import flop_counter

    import lut_plugin  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    use_sdpa_backend(args.sdpa_backend)
    step = TrainingStep(args.model, args.size, args.batch, device, args.amp, args.fuse_teacher_gelu)
    model = step.model

    # FLOPs of forward + backward, in eager mode, before anything is compiled.
    formulas = extra_flop_formulas()
    with flop_counter.FlopCounterMode(display=False, custom_mapping=formulas) as counter:
        step.forward_backward()
    flops = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    result = {
        "model": args.model,
        "size": args.size,
        "mode": "compiled" if args.compile else "eager",
        "flops_per_image": flops / args.batch,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }
    if args.flops_only:
        return result
    if args.compile:
        kwargs = {"backend": args.compile_backend}
        if args.compile_mode:
            kwargs["mode"] = args.compile_mode
        step.compile(args.compile_scope, **kwargs)

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
    median = statistics.median(times)
    return {
        **result,
        "median_step_s": median,
        "images_per_s": args.batch / median,
        "tflops_per_s": flops / median / 1e12,
        "peak_mib": peak,
        "step_mib": peak - base,
    }


def _run_worker(args: argparse.Namespace, extra: list[str], env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"benchmark worker failed ({' '.join(extra)}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def _step_part(args: argparse.Namespace) -> list[dict]:
    modes = ["eager", "compiled"] if args.compile and not args.flops_only else ["eager"]
    results: dict[tuple, list[dict]] = {}
    for _ in range(1 if args.flops_only else args.rounds):
        for size in args.sizes:
            for mode in modes:
                for model in ("mae", "lut"):
                    extra = [
                        "--step-worker", model, "--size", size, "--batch", str(args.batch),
                        "--steps", str(args.steps), "--warmup", str(args.warmup),
                        "--device", args.device, "--threads", str(args.threads),
                    ] + ["--amp"] * args.amp + ["--flops-only"] * args.flops_only  # fmt: skip
                    extra += ["--fuse-teacher-gelu"] * args.fuse_teacher_gelu
                    extra += ["--sdpa-backend", args.sdpa_backend] if args.sdpa_backend else []
                    if mode == "compiled":
                        extra += ["--compile", "--compile-backend", args.compile_backend]
                        extra += ["--compile-scope", args.compile_scope]
                        extra += ["--compile-mode", args.compile_mode] if args.compile_mode else []
                    results.setdefault((size, mode, model), []).append(_run_worker(args, extra))

    def med(size: str, mode: str, model: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(size, mode, model)])

    rows = []
    for size in args.sizes:
        mae, lut = results[(size, "eager", "mae")][0], results[(size, "eager", "lut")][0]
        row = {
            "size": size,
            "batch": args.batch,
            "mae_params_m": mae["params_m"],
            "lut_params_m": lut["params_m"],
            "mae_gflops_per_image": mae["flops_per_image"] / 1e9,
            "lut_gflops_per_image": lut["flops_per_image"] / 1e9,
            "flop_ratio": lut["flops_per_image"] / mae["flops_per_image"],
        }
        if not args.flops_only:
            for m in ("mae", "lut"):
                row[f"{m}_step_s"] = med(size, "eager", m, "median_step_s")
                row[f"{m}_images_per_s"] = args.batch / row[f"{m}_step_s"]
                row[f"{m}_tflops_per_s"] = med(size, "eager", m, "tflops_per_s")
                row[f"{m}_peak_fraction"] = (
                    row[f"{m}_tflops_per_s"] / args.peak_tflops if args.peak_tflops else None
                )
                row[f"{m}_peak_mib"] = med(size, "eager", m, "peak_mib")
                row[f"{m}_step_mib"] = med(size, "eager", m, "step_mib")
            row["time_ratio"] = row["lut_step_s"] / row["mae_step_s"]
            row["memory_ratio"] = row["lut_peak_mib"] / row["mae_peak_mib"]
            row["step_memory_ratio"] = row["lut_step_mib"] / row["mae_step_mib"]
            if args.compile:
                for m in ("mae", "lut"):
                    row[f"{m}_compiled_step_s"] = med(size, "compiled", m, "median_step_s")
                    row[f"{m}_compiled_speedup"] = row[f"{m}_step_s"] / row[f"{m}_compiled_step_s"]
                    row[f"{m}_compiled_peak_mib"] = med(size, "compiled", m, "peak_mib")
                row["compiled_time_ratio"] = row["lut_compiled_step_s"] / row["mae_compiled_step_s"]
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- data side
def _generate_jpegs(folder: Path, count: int, width: int, height: int, quality: int) -> list[str]:
    from PIL import Image

    from lut_plugin.data.synthetic import synthetic_photo

    files = []
    for seed in range(count):
        path = folder / f"synthetic_{seed:05d}.jpg"
        Image.fromarray(synthetic_photo(height, width, seed)).save(path, quality=quality)
        files.append(str(path))
    return files


def _pipeline_config(name: str, img_size: int) -> list:
    if name == "mae":
        return [dict(t, scale=img_size) if "scale" in t else t for t in MAE_PIPELINE]
    from lut_plugin.mmpretrain.datasets.pipelines import lut_view_pipelines

    return lut_view_pipelines(img_size, photometric_on_device=name == "lut_device")[2]


def _instrument(pipeline, times: dict) -> None:
    """Time every transform of a (nested) mmcv pipeline, exclusive of the transforms and
    photometric operations it calls; keys are class / function names."""
    import importlib

    stack: list[float] = []

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = stack.pop()
                if stack:
                    stack[-1] += elapsed
                entry = times.setdefault(name, [0.0, 0])
                entry[0] += elapsed - nested
                entry[1] += 1

        return wrapper

    seen = set()

    def visit(obj) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if hasattr(obj, "transform") and not isinstance(obj, list):
            obj.transform = timed(type(obj).__name__, obj.transform)
        for attr in ("transforms", "pipelines"):
            children = getattr(obj, attr, None)
            if children is not None:
                for child in children if isinstance(children, list) else [children]:
                    visit(child)

    for transform in pipeline.transforms:
        visit(transform)
    try:
        photometric = importlib.import_module("lut_plugin.mmpretrain.datasets.photometric")
    except ImportError:  # an older checkout (--baseline-root)
        return
    for op in PHOTOMETRIC_OPS:
        setattr(photometric, op, timed(f"photometric.{op}", getattr(photometric, op)))


def _per_core(pipelines: dict, files: list[str]) -> dict:
    """Images/s of each pipeline, then its milliseconds per transform (instrumented)."""
    import numpy as np

    result = {}
    np.random.seed(0)
    for pipeline in pipelines.values():  # warm up (tables, caches, page cache)
        for path in files[:16]:
            pipeline(dict(img_path=path))
    for name, pipeline in pipelines.items():
        start = time.perf_counter()
        for path in files:
            pipeline(dict(img_path=path))
        result[name] = {"images_per_s": len(files) / (time.perf_counter() - start)}
    for name, pipeline in pipelines.items():
        times: dict = {}
        _instrument(pipeline, times)
        for path in files:
            pipeline(dict(img_path=path))
        result[name]["ms_per_image"] = {k: t * 1e3 / len(files) for k, (t, n) in times.items()}
        result[name]["calls_per_image"] = {k: n / len(files) for k, (t, n) in times.items()}
    return result


def _decoders(files: list[str]) -> dict:
    """Decode every file with OpenCV and with PIL, as mmcv's two backends do."""
    import mmcv
    import numpy as np

    blobs = [Path(p).read_bytes() for p in files]
    result: dict = {"ms_per_image": {}}
    decoded = {}
    for backend in ("cv2", "pillow"):
        mmcv.imfrombytes(blobs[0], backend=backend)
        start = time.perf_counter()
        decoded[backend] = [mmcv.imfrombytes(b, backend=backend) for b in blobs]
        result["ms_per_image"][backend] = (time.perf_counter() - start) * 1e3 / len(blobs)
    diffs = [
        np.abs(a.astype(np.int16) - b.astype(np.int16)).max()
        for a, b in zip(decoded["cv2"], decoded["pillow"])
    ]
    result["max_abs_diff_cv2_vs_pillow"] = int(max(diffs))
    result["identical_fraction"] = float(np.mean([d == 0 for d in diffs]))
    return result


def _device_photometric(pipeline, files: list[str], device: str, batch: int = 64) -> dict:
    """Milliseconds per image of ``LUTDataPreprocessor``'s view-2 distortion on ``device``,
    on a batch that the deferred pipeline made (its images and parameter draws)."""
    import torch
    from mmengine.dataset import default_collate

    from lut_plugin.mmpretrain.datasets.photometric_torch import distort

    data = default_collate([pipeline(dict(img_path=files[i % len(files)])) for i in range(batch)])
    view2 = data["inputs"][1].to(device)
    params = [s.lut_photometric for s in data["data_samples"]]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    distort(view2, params)  # warm-up (tables on the device)
    times = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        distort(view2, params)
        sync()
        times.append(time.perf_counter() - start)
    return {
        "device": device,
        "batch": batch,
        "ms_per_image": statistics.median(times) * 1e3 / batch,
        "mb_moved_per_image": _bytes_moved(distort, view2, params) / 1e6 / batch,
    }


def _bytes_moved(fn, *args) -> int:
    """Bytes that the operators of ``fn(*args)`` read and write: its memory traffic if no
    kernel were fused or cached. An indexing operator counts the elements it gathers or
    scatters and its indices, not the whole tensor it indexes."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    def size(*trees) -> int:
        leaves = tree_flatten(trees)[0]
        return sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            if name in ("index", "index_select"):  # reads the gathered elements
                Count.total += 2 * size(out) + size(args[1:])
            elif name == "index_put_":  # (destination, indices, values)
                Count.total += 2 * size(args[2]) + size(args[1])
            elif not func.is_view:
                Count.total += size(args, kwargs, out)
            return out

    with Count():
        fn(*args)
    return Count.total


def _loader(pipeline, files: list[str], workers: int, batch: int, batches: int) -> float:
    """Images/s of a DataLoader with ``workers`` processes, after its start-up."""
    import torch
    from mmengine.dataset import default_collate

    total = (batches + 1) * batch

    class Files(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return total

        def __getitem__(self, index: int) -> dict:
            return pipeline(dict(img_path=files[index % len(files)]))

    loader = torch.utils.data.DataLoader(
        Files(),
        batch_size=batch,
        num_workers=workers,
        collate_fn=default_collate,
        multiprocessing_context="fork" if workers else None,
    )
    batches_iter = iter(loader)
    next(batches_iter)  # start-up: fork, first images
    start = time.perf_counter()
    count = sum(len(b["data_samples"]) for b in batches_iter)
    return count / (time.perf_counter() - start)


def _data_worker(args: argparse.Namespace) -> dict:
    """Run inside a subprocess: the pipelines pinned to one CPU with one thread, then
    (unless ``--per-core-only``) the decoders and the DataLoaders on all CPUs."""
    import cv2
    import torch
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope

    import lut_plugin  # noqa: F401

    all_cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {all_cpus[args.cpu % len(all_cpus)]})
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    init_default_scope("mmpretrain")
    files = json.loads(Path(args.files).read_text())
    build = {name: _pipeline_config(name, args.img_size) for name in args.pipelines}
    result = {"per_core": _per_core({n: Compose(c) for n, c in build.items()}, files)}
    if args.per_core_only:
        return result
    result["decoders"] = _decoders(files)
    if "lut_device" in build:
        deferred = Compose(build["lut_device"])
        result["device_photometric"] = _device_photometric(
            deferred, files, args.device, args.device_batch
        )
    os.sched_setaffinity(0, all_cpus)  # DataLoader workers inherit the affinity
    cv2.setNumThreads(0)  # as mmengine's runner sets it for data loading
    result["dataloader"] = {
        name: _loader(Compose(config), files, args.workers, args.loader_batch, args.loader_batches)
        for name, config in build.items()
    }
    return result


def _data_part(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir:
            suffixes = {".jpg", ".jpeg", ".png"}
            files = sorted(
                str(p) for p in Path(args.data_dir).rglob("*") if p.suffix.lower() in suffixes
            )[: args.data_images]
            if not files:
                sys.exit(f"no .jpg/.jpeg/.png files under --data-dir {args.data_dir}")
        else:
            files = _generate_jpegs(Path(tmp), args.data_images, *args.data_size, args.jpeg_quality)
        listing = Path(tmp) / "files.json"
        listing.write_text(json.dumps(files))
        sizes_kb = [Path(f).stat().st_size / 1024 for f in files]
        common = [
            "--files", str(listing), "--img-size", str(args.img_size),
            "--workers", str(args.workers), "--loader-batch", str(args.loader_batch),
            "--loader-batches", str(args.loader_batches), "--device-batch", str(args.device_batch),
        ]  # fmt: skip
        single = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        runs = []
        for r in range(args.rounds):
            pipelines = ["--pipelines", "mae", "lut", "lut_device"]
            extra = ["--data-worker", *pipelines, "--cpu", str(r), "--device", args.device, *common]
            runs.append(_run_worker(args, extra, single))
            if args.baseline_root:
                extra = ["--data-worker", "--pipelines", "lut", "--per-core-only"]
                env = {**single, "PYTHONPATH": str(Path(args.baseline_root).resolve())}
                base = _run_worker(args, [*extra, "--cpu", str(r), *common], env)
                runs[-1]["per_core"]["lut_baseline"] = base["per_core"]["lut"]

    def median(values) -> float:
        return statistics.median(list(values))

    per_core = {}
    for name in runs[0]["per_core"]:
        entries = [run["per_core"][name] for run in runs]
        keys = sorted({k for e in entries for k in e["ms_per_image"]})
        per_core[name] = {
            "images_per_s": median(e["images_per_s"] for e in entries),
            "ms_per_image": {
                k: median(e["ms_per_image"].get(k, 0.0) for e in entries) for k in keys
            },
            "calls_per_image": entries[0]["calls_per_image"],
        }
    loader = {
        name: median(run["dataloader"][name] for run in runs) for name in runs[0]["dataloader"]
    }
    decoders = runs[0]["decoders"]
    decoders["ms_per_image"] = {
        k: median(run["decoders"]["ms_per_image"][k] for run in runs) for k in ("cv2", "pillow")
    }
    generated = not args.data_dir
    return {
        "images": len(files),
        "source": args.data_dir or "generated",
        "image_size": list(args.data_size) if generated else None,
        "jpeg_quality": args.jpeg_quality if generated else None,
        "mean_file_kb": statistics.mean(sizes_kb),
        "img_size": args.img_size,
        "rounds": args.rounds,
        "per_core": per_core,
        "lut_over_mae_per_core": per_core["lut"]["images_per_s"] / per_core["mae"]["images_per_s"],
        "decoders": decoders,
        "device_photometric": {
            **runs[0]["device_photometric"],
            "ms_per_image": median(run["device_photometric"]["ms_per_image"] for run in runs),
        },
        "dataloader": {
            "workers": args.workers,
            "batch": args.loader_batch,
            "batches": args.loader_batches,
            "images_per_s": loader,
            "lut_over_mae": loader["lut"] / loader["mae"],
        },
    }


# ---------------------------------------------------------------------------- reports
def _markdown(meta: dict, rows: list[dict], data: dict | None) -> str:
    lines = []
    if "load_average_start" in meta:
        lines += [
            f"Machine: {meta['cpu_count']} CPUs, 1-minute load average "
            f"{meta['load_average_start']:.1f} at the start, "
            f"{meta['load_average_end']:.1f} at the end.",
            "",
        ]
    if rows:
        mem_kind = "peak CUDA MiB" if meta["device"].startswith("cuda") else "peak RSS MiB"
        lines += [
            f"## Training step: device {meta['device']} ({meta.get('device_name', '?')}), "
            f"amp {meta['amp']}, "
            f"torch threads {meta.get('torch_threads', 'default')}, "
            f"{meta['steps']} timed steps x {meta['rounds']} rounds"
            + (", LUT fuse_teacher_gelu" if meta.get("fuse_teacher_gelu") else "")
            + (f", attention {meta['sdpa_backend']} only" if meta.get("sdpa_backend") else "")
            if "mae_step_s" in rows[0]
            else "## FLOPs per image: forward + backward, torch's FlopCounterMode",
            "",
            "| size | batch | MAE GFLOP/img | LUT GFLOP/img | FLOP ratio |"
            + (
                f" MAE s/step | LUT s/step | LUT/MAE time | MAE TFLOP/s | LUT TFLOP/s"
                f" | MAE {mem_kind} | LUT {mem_kind} | LUT/MAE memory | MAE training MiB"
                " | LUT training MiB | LUT/MAE training memory |"
                if "mae_step_s" in rows[0]
                else ""
            ),
            "|---|---|---|---|---|" + ("---|" * 11 if "mae_step_s" in rows[0] else ""),
        ]
        for r in rows:
            line = (
                f"| {r['size']} | {r['batch']} | {r['mae_gflops_per_image']:.2f} "
                f"| {r['lut_gflops_per_image']:.2f} | {r['flop_ratio']:.2f} |"
            )
            if "mae_step_s" in r:
                line += (
                    f" {r['mae_step_s']:.4f} | {r['lut_step_s']:.4f} | {r['time_ratio']:.2f} "
                    f"| {r['mae_tflops_per_s']:.3f} | {r['lut_tflops_per_s']:.3f} "
                    f"| {r['mae_peak_mib']:.0f} | {r['lut_peak_mib']:.0f} "
                    f"| {r['memory_ratio']:.2f} "
                    f"| {r['mae_step_mib']:.0f} | {r['lut_step_mib']:.0f} "
                    f"| {r['step_memory_ratio']:.2f} |"
                )
            lines.append(line)
        if rows and rows[0].get("mae_peak_fraction") is not None:
            lines += ["", f"Fraction of the {meta['peak_tflops']} TFLOP/s peak:"]
            for r in rows:
                lines.append(
                    f"- {r['size']}: MAE {r['mae_peak_fraction']:.1%}, "
                    f"LUT {r['lut_peak_fraction']:.1%}"
                )
        if rows and "mae_compiled_step_s" in rows[0]:
            lines += [
                "",
                "| size | MAE s/step compiled | LUT s/step compiled | MAE speed-up | LUT speed-up "
                "| LUT/MAE time compiled |",
                "|---|---|---|---|---|---|",
            ]
            for r in rows:
                lines.append(
                    f"| {r['size']} | {r['mae_compiled_step_s']:.4f} "
                    f"| {r['lut_compiled_step_s']:.4f} "
                    f"| {r['mae_compiled_speedup']:.2f} | {r['lut_compiled_speedup']:.2f} "
                    f"| {r['compiled_time_ratio']:.2f} |"
                )
        lines.append("")
    if data:
        src = (
            f"{data['images']} generated {data['image_size'][0]}x{data['image_size'][1]} JPEGs "
            f"(quality {data['jpeg_quality']}, {data['mean_file_kb']:.0f} KB on average)"
            if data["source"] == "generated"
            else f"{data['images']} files from {data['source']} ({data['mean_file_kb']:.0f} KB)"
        )
        lines += [
            f"## Data pipeline: {src}, {data['img_size']} px views",
            "",
            "| pipeline | images/s on one core |",
            "|---|---|",
        ]
        for name, entry in data["per_core"].items():
            lines.append(f"| {name} | {entry['images_per_s']:.1f} |")
        lines += [
            "",
            f"LUT/MAE on one core: {data['lut_over_mae_per_core']:.2f}. DataLoader with "
            f"{data['dataloader']['workers']} workers, batch {data['dataloader']['batch']}: "
            + ", ".join(
                f"{k} {v:.1f} images/s" for k, v in data["dataloader"]["images_per_s"].items()
            )
            + f" (LUT/MAE {data['dataloader']['lut_over_mae']:.2f}).",
            "",
        ]
        if "device_photometric" in data:
            dev = data["device_photometric"]
            lines += [
                f"lut_device leaves view 2's photometric transforms to LUTDataPreprocessor: on "
                f"{dev['device']}, batch {dev['batch']}, they take {dev['ms_per_image']:.3f} ms "
                f"per image; their operators read and write {dev['mb_moved_per_image']:.1f} MB "
                "per image.",
                "",
            ]
        lines += [
            "| transform (exclusive time) | "
            + " | ".join(f"{n} ms/image" for n in data["per_core"])
            + " |",
            "|---|" + "---|" * len(data["per_core"]),
        ]
        names = sorted({k for e in data["per_core"].values() for k in e["ms_per_image"]})
        for k in names:
            cells = [
                f"{e['ms_per_image'][k]:.3f}" if k in e["ms_per_image"] else ""
                for e in data["per_core"].values()
            ]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        dec = data["decoders"]
        lines += [
            "",
            f"JPEG decode (mmcv.imfrombytes, one core): cv2 {dec['ms_per_image']['cv2']:.3f} ms, "
            f"pillow {dec['ms_per_image']['pillow']:.3f} ms; identical pixels on "
            f"{dec['identical_fraction']:.0%} of the files (max abs diff "
            f"{dec['max_abs_diff_cv2_vs_pillow']}).",
            "",
        ]
    return "\n".join(lines)


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, rows, data = result["meta"], result.get("rows") or [], result.get("data")
    timed = [r for r in rows if "mae_step_s" in r]
    panels = []
    if timed:
        mem_kind = "peak CUDA MiB" if meta["device"].startswith("cuda") else "peak RSS MiB"
        panels += [
            ("step_s", "seconds per training step", "step time (fwd, bwd, AdamW, EMA)"),
            ("step_mib", "MiB above weights", f"training memory ({mem_kind} minus weights)"),
        ]
    if rows:
        panels.append(("gflops_per_image", "GFLOP per image", "FLOPs (forward + backward)"))
    if data:
        panels.append(("data", "images/s", "data pipeline (decode, resize, views, pack)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (key, ylabel, title) in zip(axes[0], panels):
        if key == "data":
            groups = ["one core", f"DataLoader\n{data['dataloader']['workers']} workers"]
            names = list(data["per_core"])
            labels = {
                "mae": "MAE (1 view)",
                "lut": "LUT (2 views)",
                "lut_device": "LUT, view 2's colour ops on device",
                "lut_baseline": "LUT before",
            }
            width = 0.8 / len(names)
            for k, name in enumerate(names):
                values = [data["per_core"][name]["images_per_s"]]
                if name in data["dataloader"]["images_per_s"]:
                    values.append(data["dataloader"]["images_per_s"][name])
                xs = [g + (k - (len(names) - 1) / 2) * width for g in range(len(values))]
                colour = {"mae": "C0", "lut": "C1"}.get(name, "C7")
                ax.bar(xs, values, width, label=labels.get(name, name), color=colour)
                for x, v in zip(xs, values):
                    ax.annotate(f"{v:.0f}", (x, v), ha="center", va="bottom", fontsize=8)
            ax.set_xticks(range(len(groups)), groups)
            top = max(data["per_core"][n]["images_per_s"] for n in names)
            top = max([top, *data["dataloader"]["images_per_s"].values()])
            ax.set_ylim(0, top * (1.3 + 0.1 * len(names)))  # room for the legend above the bars
            ax.legend(fontsize=7, loc="upper left", ncol=2 if len(names) < 3 else 1)
        else:
            source = timed if key != "gflops_per_image" else rows
            xs = range(len(source))
            series = [("MAE", "mae", "C0", None), ("LUT", "lut", "C1", None)]
            if key == "step_s" and "lut_compiled_step_s" in source[0]:
                series += [
                    ("MAE compiled", "mae_compiled", "C0", "//"),
                    ("LUT compiled", "lut_compiled", "C1", "//"),
                ]
            width = 0.8 / len(series)
            values = {p: [r[f"{p}_{key}"] for r in source] for _, p, _, _ in series}
            for k, (label, p, colour, hatch) in enumerate(series):
                offsets = [x + (k - (len(series) - 1) / 2) * width for x in xs]
                alpha = 0.6 if hatch else 1.0
                ax.bar(
                    offsets, values[p], width, label=label, color=colour, hatch=hatch, alpha=alpha
                )
                if p.startswith("lut"):  # LUT / MAE ratio above each LUT bar
                    base = values[p.replace("lut", "mae")]
                    for x, a, b in zip(offsets, base, values[p]):
                        ax.annotate(f"x{b / a:.2f}", (x, b), ha="center", va="bottom", fontsize=8)
            every = [v for vs in values.values() for v in vs]
            if max(every) / min(every) > 10:  # sizes differ by orders of magnitude
                ax.set_yscale("log")
                ax.set_ylim(min(every) / 3, max(every) * 3 ** (len(series) // 2))
            else:
                ax.set_ylim(0, max(every) * (1.3 + 0.15 * len(series)))  # room for the legend
            ax.set_xticks(list(xs), [f"{r['size']}\nbatch {r['batch']}" for r in source])
            ax.legend(loc="upper left", fontsize=7, ncol=2)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
    if timed or rows:
        precision = "bf16 autocast" if meta["amp"] else "fp32"
        fig.suptitle(f"LUT vs MAE, {meta.get('device_name', meta['device'])}, {precision}")
    else:
        fig.suptitle(f"LUT vs MAE data pipeline, {meta['cpu_count']} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["step", "data"], choices=["step", "data"])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "vit-s"], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--compile", action="store_true", help="also time compiled blocks")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--compile-mode", help="torch.compile mode, e.g. max-autotune")
    parser.add_argument(
        "--compile-scope",
        choices=["blocks", "loss", "step"],
        default="blocks",
        help="compile the transformer blocks in place (as tools/train.py --compile), the "
        "whole loss computation as one graph, or forward, backward and the optimiser step "
        "(as mmengine's compile config key)",
    )
    parser.add_argument(
        "--fuse-teacher-gelu", action="store_true", help="LUT with fuse_teacher_gelu=True"
    )
    parser.add_argument("--sdpa-backend", choices=SDPA_BACKENDS, help="the only attention backend")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs, no timing")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, for the fraction")
    parser.add_argument("--data-dir", help="JPEGs to use instead of generated ones")
    parser.add_argument("--data-images", type=int, default=64)
    parser.add_argument("--data-size", type=int, nargs=2, default=(500, 375), metavar=("W", "H"))
    parser.add_argument("--jpeg-quality", type=int, default=90)
    parser.add_argument("--img-size", type=int, default=224, help="size of the views")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader processes")
    parser.add_argument("--loader-batch", type=int, default=32)
    parser.add_argument("--loader-batches", type=int, default=8)
    parser.add_argument(
        "--device-batch", type=int, default=64, help="batch of the view-2 distortion on --device"
    )
    parser.add_argument("--baseline-root", help="another checkout whose LUT pipeline to add")
    parser.add_argument("--out", default="docs/benchmarks/cpu")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from --out")
    # subprocess entry points
    parser.add_argument("--step-worker", choices=["mae", "lut"], help=argparse.SUPPRESS)
    parser.add_argument("--data-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pipelines", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--per-core-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = args.step_worker
    if args.step_worker or args.data_worker:
        print(json.dumps(_step_worker(args) if args.step_worker else _data_worker(args)))
        return
    sys.path.insert(0, str(ROOT))  # workers get theirs from PYTHONPATH (--baseline-root)
    out_dir = ROOT / args.out
    if args.replot:
        _plot(json.loads((out_dir / "lut_vs_mae.json").read_text()), out_dir / "lut_vs_mae.png")
        return

    meta = {
        "device": args.device,
        "amp": args.amp,
        "steps": args.steps,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "compile": args.compile,
        "compile_backend": args.compile_backend if args.compile else None,
        "compile_mode": args.compile_mode if args.compile else None,
        "compile_scope": args.compile_scope if args.compile else None,
        "fuse_teacher_gelu": args.fuse_teacher_gelu,
        "sdpa_backend": args.sdpa_backend,
        "peak_tflops": args.peak_tflops,
        "device_name": _device_name(args.device),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads or "default",
        "load_average_start": os.getloadavg()[0],
    }
    result = {"meta": meta, "rows": [], "data": None}
    if "step" in args.parts:
        result["rows"] = _step_part(args)
    if "data" in args.parts:
        result["data"] = _data_part(args)
    meta["load_average_end"] = os.getloadavg()[0]  # other processes on the machine
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lut_vs_mae.json").write_text(json.dumps(result, indent=2))
    report = _markdown(meta, result["rows"], result["data"])
    (out_dir / "lut_vs_mae.md").write_text(report)
    print(report)
    _plot(result, out_dir / "lut_vs_mae.png")


if __name__ == "__main__":
    main()
