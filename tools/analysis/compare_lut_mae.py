"""LUT against MAE on the CPU: pre-train both for several seeds, evaluate the frozen features.

    python tools/analysis/compare_lut_mae.py --out docs/evaluation/lut_vs_mae_cpu

For every seed, pre-trains the tiny toy encoder with LUT (``lut_vit-tiny_toy_cpu.py``) and
with mmpretrain's MAE (``mae_vit-tiny_toy_cpu.py``: same encoder, decoder, data, view-1
augmentation, optimiser, schedule and epochs) through ``tools/train.py``, ``--jobs`` runs at
a time, each with ``--threads`` torch threads. Both configs run ``LUTKNNMonitorHook``, so the
k-NN accuracy of the frozen encoder is logged over the epochs. Then it evaluates the last
checkpoints (LUT student, LUT momentum teacher, MAE) and a random-init encoder of the same
architecture per seed, plus raw pixels, on the labelled toy splits: weighted k-NN and linear
probe for the cls token and the mean-pooled patch tokens, effective rank
(``--test-images N``: on N held-out test images of the same generator instead of the
validation split). Writes to
``--out``:

- ``results.md`` / ``results.json``: the table (mean +- s.d. over seeds, every seed's value),
  training wall time per run, the settings and the command;
- ``knn_over_epochs.png``: k-NN top-1 during pre-training (both poolings, student and
  teacher);
- ``losses.png``: reconstruction loss of both methods and LUT's broader-context loss;
- ``effective_rank.png``: effective rank of the validation features over the epochs.

Runs (configs, logs, checkpoints) go to ``--work-root``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mmengine.config import DictAction

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIGS = ROOT / "configs" / "mmpretrain"
METHODS = {"LUT": "lut_vit-tiny_toy_cpu.py", "MAE": "mae_vit-tiny_toy_cpu.py"}
#: rows of the results table, in order: (label, method whose checkpoint is read, encoder)
ENCODERS = (
    ("LUT student", "LUT", "student"),
    ("LUT teacher", "LUT", "teacher"),
    ("MAE", "MAE", "student"),
    ("random init", "LUT", "random"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument(
        "--work-root", type=Path, default=ROOT / "work_dirs" / "compare_lut_mae",
        help="where the training runs go (default work_dirs/compare_lut_mae)",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--epochs", type=int, default=None, help="pre-training epochs (default: the config's)"
    )
    parser.add_argument("--num-train", type=int, default=None, help="toy training images")
    parser.add_argument("--num-val", type=int, default=None, help="toy validation images")
    parser.add_argument("--data-root", default=None, help="toy dataset folder")
    parser.add_argument("--batch-size", type=int, default=None, help="pre-training batch")
    parser.add_argument("--knn-interval", type=int, default=None, help="monitor every N epochs")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument(
        "--test-images", type=int, default=None, metavar="N",
        help="evaluate on N held-out toy test images instead of the validation split",
    )  # fmt: skip
    parser.add_argument(
        "--lut-config", type=Path, default=CONFIGS / METHODS["LUT"], help="LUT config"
    )
    parser.add_argument(
        "--mae-config", type=Path, default=CONFIGS / METHODS["MAE"], help="MAE config"
    )
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction, default={}, metavar="KEY=VALUE",
        help="more overrides for both configs (as tools/train.py --cfg-options)",
    )  # fmt: skip
    parser.add_argument(
        "--lut-cfg-options", nargs="+", action=DictAction, default={}, metavar="KEY=VALUE",
        help="overrides for the LUT config only, applied last (e.g. model.w_bc=0.1)",
    )  # fmt: skip
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------ configs


def _reschedule(cfg, epochs: int) -> None:
    """Scale the warm-up to ``epochs`` and end the cosine decay at the last epoch."""
    old_epochs = cfg.train_cfg.max_epochs
    warmup = [s for s in cfg.param_scheduler if s.type == "LinearLR"]
    cosine = [s for s in cfg.param_scheduler if s.type == "CosineAnnealingLR"]
    if len(warmup) != 1 or len(cosine) != 1 or len(cfg.param_scheduler) != 2:
        raise ValueError("expected a LinearLR warm-up and a CosineAnnealingLR in param_scheduler")
    warm = round(warmup[0].end * epochs / old_epochs)
    schedule = [dict(warmup[0], begin=0, end=warm)] if warm > 0 else []
    schedule.append(dict(cosine[0], begin=warm, end=epochs, T_max=epochs - warm))
    cfg.param_scheduler = schedule
    cfg.train_cfg.max_epochs = epochs


def run_config(
    base: Path, args: argparse.Namespace, seed: int, work_dir: Path, options: dict
) -> Path:
    """Write the config of one run: ``base`` with ``options`` (``--cfg-options``, and for LUT
    ``--lut-cfg-options``) merged, then this comparison's schedule, data and seed."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(base))
    if options:
        cfg.merge_from_dict(options)
    if args.epochs is not None:
        _reschedule(cfg, args.epochs)
    dataset = cfg.train_dataloader.dataset
    for key, value in (
        ("num_train", args.num_train),
        ("num_val", args.num_val),
        ("data_root", args.data_root),
    ):
        if value is not None:
            dataset[key] = value
    if args.batch_size is not None:
        cfg.train_dataloader.batch_size = args.batch_size
    for hook in cfg.get("custom_hooks", []):
        if hook.type == "LUTKNNMonitorHook" and args.knn_interval is not None:
            hook.interval = args.knn_interval
    if not any(h.type == "LUTKNNMonitorHook" for h in cfg.get("custom_hooks", [])):
        raise ValueError(f"{base}: no LUTKNNMonitorHook in custom_hooks, nothing to plot")
    cfg.randomness = dict(seed=seed, diff_rank_seed=True)
    cfg.work_dir = str(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "run_config.py"
    cfg.dump(str(path))
    return path


# ----------------------------------------------------------------------------- training


def train_all(runs: list[dict], jobs: int, threads: int) -> None:
    """Run ``tools/train.py`` for every run, ``jobs`` at a time; record the wall time."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    pending, active = list(runs), []
    while pending or active:
        while pending and len(active) < jobs:
            run = pending.pop(0)
            log = open(run["work_dir"] / "train_stdout.log", "w")  # noqa: SIM115
            cmd = [sys.executable, str(ROOT / "tools" / "train.py"), str(run["config"])]
            print(f"[{run['name']}] {shlex.join(cmd)}", flush=True)
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            active.append((run, proc, log, time.perf_counter()))
        time.sleep(0.5)
        for item in list(active):
            run, proc, log, start = item
            if proc.poll() is None:
                continue
            log.close()
            active.remove(item)
            run["seconds"] = time.perf_counter() - start
            if proc.returncode != 0:
                tail = (run["work_dir"] / "train_stdout.log").read_text()[-4000:]
                for _, other, _, _ in active:
                    other.terminate()
                raise RuntimeError(f"{run['name']} failed ({proc.returncode}):\n{tail}")
            print(f"[{run['name']}] done in {run['seconds']:.0f} s", flush=True)


def last_checkpoint(work_dir: Path) -> Path:
    pointer = work_dir / "last_checkpoint"
    if not pointer.is_file():
        raise FileNotFoundError(f"{work_dir}: no last_checkpoint; did the run finish?")
    return Path(pointer.read_text().strip())


def read_scalars(work_dir: Path) -> tuple[list[dict], list[dict]]:
    """``(monitor rows, training log rows)`` of a run's ``vis_data/scalars.json``."""
    files = sorted(work_dir.glob("*/vis_data/scalars.json"))
    if not files:
        raise FileNotFoundError(f"no */vis_data/scalars.json under {work_dir}")
    monitor, train = [], []
    for line in files[-1].read_text().splitlines():
        row = json.loads(line)
        if any(k.startswith("loss") for k in row):
            train.append(row)
        elif "knn_top1_mean" in row:
            monitor.append(row)
    return monitor, train


# --------------------------------------------------------------------------- evaluation


def evaluate_runs(
    runs: list[dict], args: argparse.Namespace, dataset_cfgs: tuple[dict, dict]
) -> tuple[list[dict], dict]:
    """One row per (encoder, seed, pooling) plus the raw-pixel rows (seed None)."""
    from lut_plugin.mmpretrain.evaluation import (
        encoder_input_size,
        evaluate_encoder,
        evaluate_pixels,
        labelled_splits,
        load_encoder,
    )

    by_key = {(r["method"], r["seed"]): r for r in runs}
    rows, data = [], None
    settings = dict(probe_epochs=args.probe_epochs)
    for seed in args.seeds:
        for label, method, encoder_name in ENCODERS:
            run = by_key[(method, seed)]
            random_init = encoder_name == "random"
            encoder, preprocessor = load_encoder(
                str(run["config"]),
                "random" if random_init else str(last_checkpoint(run["work_dir"])),
                "student" if random_init else encoder_name,
                seed=seed,
            )
            if data is None:
                data = labelled_splits(*dataset_cfgs, encoder_input_size(encoder), preprocessor)
            results = evaluate_encoder(encoder, *data, seed=seed, **settings)
            for pooling, metrics in results.items():
                rows.append(dict(encoder=label, seed=seed, pooling=pooling, **metrics))
            print(f"evaluated {label}, seed {seed}", flush=True)
    train_batches, val_batches, num_classes = data
    pixels = evaluate_pixels(train_batches, val_batches, num_classes, **settings)
    for pooling, metrics in pixels.items():
        rows.append(dict(encoder="raw pixels", seed=None, pooling=pooling, **metrics))
    sizes = {
        "num_train": sum(len(y) for _, y in train_batches),
        "num_val": sum(len(y) for _, y in val_batches),
    }
    return rows, sizes


def _stats(values: list[float]) -> dict:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "values": values}


def summarise(
    rows: list[dict],
    metrics: tuple[str, ...] = ("knn_top1", "linear_top1", "effective_rank", "std_l2"),
) -> list[dict]:
    """Mean and s.d. over seeds of every metric, per (encoder, pooling)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["encoder"], row["pooling"]), []).append(row)
    table = []
    for (encoder, pooling), items in groups.items():
        entry = dict(encoder=encoder, pooling=pooling, seeds=[r["seed"] for r in items])
        for metric in metrics:
            if metric in items[0]:
                entry[metric] = _stats([r[metric] for r in items])
        table.append(entry)
    return table


# -------------------------------------------------------------------------------- plots


def plot(runs: list[dict], series: dict[str, tuple[list, list]], out: Path) -> None:
    """The PNGs; ``series`` maps a run's name to its :func:`read_scalars`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"LUT": "C0", "MAE": "C1"}
    markers = {seed: "o.sx^v<>"[i % 8] for i, seed in enumerate(sorted({r["seed"] for r in runs}))}

    def monitor_plot(keys: tuple[str, str], ylabel: str, filename: str) -> None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        for ax, pooling in zip(axes, ("mean", "cls")):
            for run in runs:
                monitor = series[run["name"]][0]
                for suffix, style in (("", "-"), ("_teacher", "--")):
                    key = f"{keys[0]}_{pooling}{suffix}"
                    points = [(m["epoch"], m[key]) for m in monitor if key in m]
                    if not points:
                        continue
                    who = run["method"] + (" teacher" if suffix else "")
                    ax.plot(
                        *zip(*points), style, color=colours[run["method"]],
                        marker=markers[run["seed"]], ms=4, lw=1.2, alpha=0.9,
                        label=f"{who}, seed {run['seed']}",
                    )  # fmt: skip
            ax.set_title(
                f"{keys[1]} ({'mean of patch tokens' if pooling == 'mean' else 'cls token'})"
            )
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[1].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=120)
        plt.close(fig)

    monitor_plot(("knn_top1", "k-NN top-1, validation"), "top-1 (%)", "knn_over_epochs.png")
    monitor_plot(("erank", "effective rank, validation"), "effective rank", "effective_rank.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for run in runs:
        train = series[run["name"]][1]
        key = "loss_mim" if run["method"] == "LUT" else "loss"
        points = [(r["step"], r[key]) for r in train if key in r]
        style = ["-", "--", ":", "-."][sorted(markers).index(run["seed"]) % 4]
        axes[0].plot(*zip(*points), style, color=colours[run["method"]], lw=1, alpha=0.8,
                     label=f"{run['method']} seed {run['seed']}")  # fmt: skip
        bc = [(r["step"], r["loss_bc"]) for r in train if "loss_bc" in r]
        if bc:
            axes[1].plot(*zip(*bc), style, color=colours[run["method"]], lw=1, alpha=0.8,
                         label=f"{run['method']} seed {run['seed']}")  # fmt: skip
    axes[0].set_title("reconstruction loss (MAE loss, LUT loss_mim)")
    axes[0].set_yscale("log")
    axes[1].set_title("LUT loss_bc (w_bc * L_BC)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------ reports


def _fmt(stat: dict | None) -> str:
    if stat is None:
        return "-"
    if len(stat["values"]) == 1:
        return f"{stat['mean']:.1f}"
    return f"{stat['mean']:.1f} ± {stat['sd']:.1f}"


def write_report(out: Path, table: list[dict], runs: list[dict], meta: dict) -> str:
    split = "held-out test" if meta["test_images"] else "validation"
    lines = [
        "# LUT vs MAE on the CPU: frozen-feature evaluation",
        "",
        "Made by `tools/analysis/compare_lut_mae.py` (see `docs/evaluation.md`):",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        f"Seeds {meta['seeds']}; {meta['epochs']} pre-training epochs on "
        f"{meta['data']['num_train']} toy images (k-NN bank / probe training), evaluated on "
        f"{meta['data']['num_val']} {split} images; {meta['jobs']} runs at a time with "
        f"{meta['threads']} thread(s) each on {meta['machine']}. Mean ± s.d. over seeds.",
        "",
        "| encoder | pooling | k-NN top-1 % | linear probe top-1 % | effective rank |",
        "|---|---|---|---|---|",
    ]
    for row in table:
        lines.append(
            f"| {row['encoder']} | {row['pooling']} | {_fmt(row.get('knn_top1'))} | "
            f"{_fmt(row.get('linear_top1'))} | {_fmt(row.get('effective_rank'))} |"
        )
    lines += [
        "",
        "k-NN: cosine, k = 20, T = 0.07. Linear probe: BatchNorm without affine + linear "
        f"layer, {meta['probe_epochs']} epochs on fixed features. Effective rank of the "
        f"{meta['dim']}-d {split} features (exp of the entropy of the normalised singular "
        "values).",
        "",
        "| run | seed | training wall time (s) |",
        "|---|---|---|",
    ]
    for run in runs:
        lines.append(f"| {run['method']} | {run['seed']} | {run['seconds']:.0f} |")
    lines += [
        "",
        "![k-NN over epochs](knn_over_epochs.png)",
        "",
        "![effective rank over epochs](effective_rank.png)",
        "",
        "![losses](losses.png)",
        "",
    ]
    text = "\n".join(lines)
    (out / "results.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    import lut_plugin  # noqa: F401  (registers the components)
    from lut_plugin.mmpretrain.engine.hooks import earlier_run_checkpoints
    from lut_plugin.mmpretrain.evaluation import build_labelled_dataset, split_dataset_cfgs

    args.out.mkdir(parents=True, exist_ok=True)
    bases = {"LUT": args.lut_config, "MAE": args.mae_config}
    runs = [
        dict(name=name, method=method, seed=seed, work_dir=args.work_root / name)
        for seed in args.seeds
        for method in bases
        for name in [f"{method.lower()}_seed{seed}"]
    ]
    # Training refuses to overwrite an earlier run's checkpoints: say so before starting.
    taken = [str(r["work_dir"]) for r in runs if earlier_run_checkpoints(str(r["work_dir"]))]
    if taken:
        raise SystemExit(
            f"error: {', '.join(taken)} hold the checkpoints of an earlier comparison; pass "
            f"another --work-root (or delete them)"
        )
    for run in runs:
        method, seed, work_dir = run["method"], run["seed"], run["work_dir"]
        options = {**args.cfg_options, **(args.lut_cfg_options if method == "LUT" else {})}
        run["config"] = run_config(bases[method], args, seed, work_dir, options)
    # Generate the toy data once, before the runs start side by side.
    dataset_cfgs = split_dataset_cfgs(str(runs[0]["config"]), test_images=args.test_images)
    for cfg in dataset_cfgs:
        build_labelled_dataset(dict(cfg, pipeline=[]))
    train_all(runs, args.jobs, args.threads)
    rows, data = evaluate_runs(runs, args, dataset_cfgs)
    table = summarise(rows)
    series = {r["name"]: read_scalars(r["work_dir"]) for r in runs}
    plot(runs, series, args.out)

    from mmengine.config import Config

    run_cfg = Config.fromfile(str(runs[0]["config"]))
    meta = dict(
        command="python tools/analysis/compare_lut_mae.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        seeds=args.seeds,
        epochs=run_cfg.train_cfg.max_epochs,
        data=data,
        jobs=args.jobs,
        threads=args.threads,
        probe_epochs=args.probe_epochs,
        test_images=args.test_images,
        dim=rows[0]["dim"],
        machine=f"{platform.machine()} {os.cpu_count()} CPU cores",
        total_seconds=round(time.perf_counter() - start, 1),
    )
    report = write_report(args.out, table, runs, meta)
    record = dict(
        meta,
        table=table,
        rows=rows,
        runs=[
            dict(
                method=r["method"],
                seed=r["seed"],
                seconds=round(r["seconds"], 1),
                monitor=series[r["name"]][0],
            )  # fmt: skip
            for r in runs
        ],
    )
    (args.out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(report)
    print(f"total {meta['total_seconds']:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
