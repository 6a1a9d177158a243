"""LUT against MAE on the CPU: pre-train both for several seeds, evaluate the frozen features.

    python tools/analysis/compare_lut_mae.py --out work_dirs/lut_vs_mae

Per seed, ``tools/train.py`` pre-trains the tiny toy encoder with LUT and with mmpretrain's
MAE; ``evaluate_features.py``'s evaluation of the last checkpoints, a random-init encoder and
the raw pixels, and the k-NN monitor's curves go to ``--out``. See docs/evaluation.md.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mmengine.config import Config, DictAction

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools" / "analysis")]  # a checkout, not installed
from evaluate_features import dataset_cfgs, evaluate_models  # noqa: E402

#: rows of the results table: (label, method whose checkpoint is read, encoder)
ENCODERS = (("LUT student", "LUT", "student"), ("LUT teacher", "LUT", "teacher"),
            ("MAE", "MAE", "student"), ("random init", "LUT", "random"))  # fmt: skip
METRICS = ("knn_top1", "linear_top1", "effective_rank", "std_l2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="results folder")
    p.add_argument("--work-root", type=Path, default=ROOT / "work_dirs" / "compare_lut_mae")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--data-root", help="toy dataset folder")
    for name, what in (("epochs", "pre-training epochs"), ("num-train", "toy training images"),
                       ("num-val", "toy validation images"), ("batch-size", "pre-training batch"),
                       ("knn-interval", "monitor every N epochs")):  # fmt: skip
        p.add_argument(f"--{name}", type=int, help=f"{what} (default: the config's)")
    p.add_argument("--jobs", type=int, default=2, help="training runs at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--probe-epochs", type=int, default=100)
    p.add_argument("--test-images", type=int, metavar="N", help="held-out toy test images")
    configs = ROOT / "configs" / "mmpretrain"
    p.add_argument("--lut-config", type=Path, default=configs / "lut_vit-tiny_toy_cpu.py")
    p.add_argument("--mae-config", type=Path, default=configs / "mae_vit-tiny_toy_cpu.py")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default={}, metavar="K=V",
                   help="overrides of both configs (as tools/train.py's)")  # fmt: skip
    p.add_argument("--lut-cfg-options", nargs="+", action=DictAction, default={}, metavar="K=V",
                   help="overrides of the LUT config only, applied last")  # fmt: skip
    return p.parse_args(argv)


def run_config(base: Path, args: argparse.Namespace, run: dict, options: dict) -> Path:
    """Write a run's config: ``base`` with ``options``, then the comparison's settings."""
    seed, work_dir = run["seed"], run["work_dir"]
    cfg = Config.fromfile(str(base))
    cfg.merge_from_dict(options)
    if args.epochs is not None:  # scale the warm-up, end the cosine decay at the last epoch
        warmup, cosine = cfg.param_scheduler  # LinearLR, CosineAnnealingLR
        warm = round(warmup.end * args.epochs / cfg.train_cfg.max_epochs)
        cfg.param_scheduler = [dict(warmup, begin=0, end=warm)] * (warm > 0) + [
            dict(cosine, begin=warm, end=args.epochs, T_max=args.epochs - warm)]  # fmt: skip
        cfg.train_cfg.max_epochs = args.epochs
    cfg.train_dataloader.dataset.update({k: getattr(args, k) for k in (
        "num_train", "num_val", "data_root") if getattr(args, k) is not None})  # fmt: skip
    cfg.train_dataloader.batch_size = args.batch_size or cfg.train_dataloader.batch_size
    monitors = [h for h in cfg.get("custom_hooks", []) if h.type == "LUTKNNMonitorHook"]
    if not monitors:
        raise ValueError(f"{base}: no LUTKNNMonitorHook in custom_hooks, nothing to plot")
    monitors[0].interval = args.knn_interval or monitors[0].interval
    cfg.randomness = dict(seed=seed, diff_rank_seed=True)
    cfg.work_dir, run["epochs"] = str(work_dir), cfg.train_cfg.max_epochs
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(work_dir / "run_config.py"))
    return work_dir / "run_config.py"


def train(run: dict, threads: int) -> None:
    """``tools/train.py`` on a run's config; records its wall time."""
    path, n = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), str(threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, PYTHONPATH=path)
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), str(run["config"])]
    print(f"[{run['name']}] {shlex.join(cmd)}", flush=True)
    start, log = time.perf_counter(), run["work_dir"] / "train_stdout.log"
    with open(log, "w") as f:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    run["seconds"] = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{run['name']} failed ({code}):\n{log.read_text()[-4000:]}")
    print(f"[{run['name']}] done in {run['seconds']:.0f} s", flush=True)


def read_monitor(work_dir: Path) -> list[dict]:
    """The k-NN monitor's rows of a run's ``vis_data/scalars.json`` (not the training rows)."""
    text = sorted(work_dir.glob("*/vis_data/scalars.json"))[-1].read_text()
    return [r for r in map(json.loads, text.splitlines()) if "knn_top1_mean" in r
            and "loss" not in r]  # fmt: skip


def evaluate_runs(runs: list[dict], args, cfgs: tuple[dict, dict]) -> list[dict]:
    """One row per (encoder, seed, pooling), plus the raw pixels' (seed None)."""
    by_key, rows = {(r["method"], r["seed"]): r for r in runs}, []
    for seed in args.seeds:
        models = [(label, str(by_key[(method, seed)]["config"]), "random" if name == "random" else
                   (by_key[(method, seed)]["work_dir"] / "last_checkpoint").read_text().strip(),
                   name) for label, method, name in ENCODERS]  # fmt: skip
        for row in evaluate_models(models, cfgs, seed == args.seeds[0], seed=seed,
                                   probe_epochs=args.probe_epochs):  # fmt: skip
            pixels = row["label"] == "pixels"
            rows.append(dict(row, encoder=row["encoder" if pixels else "label"],
                             seed=None if pixels else seed))  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean, s.d. and values over seeds of every metric, per (encoder, pooling)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["encoder"], row["pooling"]), []).append(row)

    def stat(values: list) -> dict:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return dict(mean=statistics.fmean(values), sd=sd, values=values)

    return [dict(encoder=encoder, pooling=pooling, seeds=[r["seed"] for r in items],
                 **{m: stat([r[m] for r in items]) for m in METRICS if m in items[0]})
            for (encoder, pooling), items in groups.items()]  # fmt: skip


def plot(runs: list[dict], series: dict, out: Path) -> None:
    """k-NN top-1 and effective rank over the epochs; ``series``: :func:`read_monitor`s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours, seeds = {"LUT": "C0", "MAE": "C1"}, sorted({r["seed"] for r in runs})
    for metric, title, filename in (("knn_top1", "k-NN top-1 (%)", "knn_over_epochs.png"),
                                    ("erank", "effective rank", "effective_rank.png")):  # fmt: skip
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        for ax, pooling in zip(axes, ("mean", "cls")):
            for run in runs:
                for suffix, style in (("", "-"), ("_teacher", "--")):
                    key = f"{metric}_{pooling}{suffix}"
                    points = [(m["epoch"], m[key]) for m in series[run["name"]] if key in m]
                    if points:
                        ax.plot(*zip(*points), style, color=colours[run["method"]],
                                marker="o.sx^v<>"[seeds.index(run["seed"]) % 8], ms=4,
                                label=f"{run['method']}{suffix.replace('_', ' ')}, seed "
                                      f"{run['seed']}")  # fmt: skip
            ax.set(title=f"{title}, validation, {pooling} pooling", xlabel="epoch")
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=120)
        plt.close(fig)


def report(table: list[dict], runs: list[dict], meta: dict) -> str:
    def fmt(stat: dict | None) -> str:
        sd = f" ± {stat['sd']:.1f}" if stat and len(stat["values"]) > 1 else ""
        return f"{stat['mean']:.1f}{sd}" if stat else "-"

    split = "held-out test" if meta["test_images"] else "validation"
    return "\n".join([
        "# LUT vs MAE on the CPU: frozen-feature evaluation", "",
        "Made by `tools/analysis/compare_lut_mae.py` (see `docs/evaluation.md`):", "",
        f"```bash\n{meta['command']}\n```", "",
        f"Seeds {meta['seeds']}; {meta['epochs']} pre-training epochs on "
        f"{meta['data']['num_train']} toy images (k-NN bank / probe training), evaluated on "
        f"{meta['data']['num_val']} {split} images; {meta['jobs']} runs at a time with "
        f"{meta['threads']} thread(s) each on {meta['machine']}. Mean ± s.d. over seeds.", "",
        "| encoder | pooling | k-NN top-1 % | linear probe top-1 % | effective rank |",
        "|---|---|---|---|---|",
        *(f"| {r['encoder']} | {r['pooling']} | {fmt(r.get('knn_top1'))} | "
          f"{fmt(r.get('linear_top1'))} | {fmt(r.get('effective_rank'))} |" for r in table),
        "", "k-NN: cosine, k = 20, T = 0.07. Linear probe: BatchNorm without affine + linear "
        f"layer, {meta['probe_epochs']} epochs on fixed features. Effective rank of the "
        f"{meta['dim']}-d {split} features.", "",
        "| run | seed | training wall time (s) |", "|---|---|---|",
        *(f"| {r['method']} | {r['seed']} | {r['seconds']:.0f} |" for r in runs), "",
        "![k-NN over epochs](knn_over_epochs.png)", "",
        "![effective rank over epochs](effective_rank.png)", "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args, start = parse_args(argv), time.perf_counter()
    from lut_plugin.evaluation.features import build_dataset
    from lut_plugin.runtime.saving import earlier_run_checkpoints

    bases = {"LUT": args.lut_config, "MAE": args.mae_config}
    runs = [dict(name=f"{m.lower()}_seed{s}", method=m, seed=s,
                 work_dir=args.work_root / f"{m.lower()}_seed{s}")
            for s in args.seeds for m in bases]  # fmt: skip
    # Training refuses to overwrite an earlier run's checkpoints: say so before starting.
    taken = [str(r["work_dir"]) for r in runs if earlier_run_checkpoints(str(r["work_dir"]))]
    if taken:
        raise SystemExit(f"error: {', '.join(taken)} hold the checkpoints of an earlier "
                         "comparison; pass another --work-root (or delete them)")  # fmt: skip
    for run in runs:
        lut = args.lut_cfg_options if run["method"] == "LUT" else {}
        run["config"] = run_config(bases[run["method"]], args, run, {**args.cfg_options, **lut})
    cfgs = dataset_cfgs(str(runs[0]["config"]), test_images=args.test_images)
    for cfg in cfgs:  # generate the toy data once, before the runs start side by side
        build_dataset(dict(cfg, pipeline=[]))
    with ThreadPoolExecutor(args.jobs) as pool:  # (one job: in this thread)
        list((pool.map if args.jobs > 1 else map)(lambda run: train(run, args.threads), runs))
    rows = evaluate_runs(runs, args, cfgs)
    table, series = summarise(rows), {r["name"]: read_monitor(r["work_dir"]) for r in runs}
    args.out.mkdir(parents=True, exist_ok=True)
    plot(runs, series, args.out)
    meta = dict(
        command=shlex.join(["python", "tools/analysis/compare_lut_mae.py",
                            *map(str, argv or sys.argv[1:])]),
        seeds=args.seeds, epochs=runs[0]["epochs"],
        data=dict(num_train=cfgs[0]["num_train"], num_val=cfgs[1]["num_val"]), jobs=args.jobs,
        threads=args.threads, probe_epochs=args.probe_epochs, test_images=args.test_images,
        dim=rows[0]["dim"], machine=f"{platform.machine()} {os.cpu_count()} CPU cores",
        total_seconds=round(time.perf_counter() - start, 1),
    )  # fmt: skip
    (args.out / "results.md").write_text(text := report(table, runs, meta))
    record = dict(meta, table=table, rows=rows, runs=[
        dict(method=r["method"], seed=r["seed"], seconds=round(r["seconds"], 1),
             monitor=series[r["name"]]) for r in runs])  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{text}\ntotal {meta['total_seconds']:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
