"""Plot the training losses that mmengine logged for a run.

    python tools/analysis/plot_loss.py work_dirs/lut_vit-tiny_toy_cpu --out loss.png

Reads every ``<work_dir>/<timestamp>/vis_data/scalars.json`` (mmengine's
``LocalVisBackend``), joins resumed runs by iteration and plots each ``loss*`` key.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_scalars(work_dir: Path) -> dict[str, dict[int, float]]:
    """Loss series by key, ``{key: {iteration: value}}``, later runs winning ties."""
    files = sorted(work_dir.glob("*/vis_data/scalars.json"))
    if not files:
        raise FileNotFoundError(f"no */vis_data/scalars.json under {work_dir}: is it a work dir?")
    series: dict[str, dict[int, float]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "step" not in row or "loss" not in row:
                continue  # validation rows
            for key, value in row.items():
                if key.startswith("loss"):
                    series.setdefault(key, {})[int(row["step"])] = float(value)
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work_dir", type=Path)
    parser.add_argument(
        "--out", type=Path, default=None, help="PNG path (default: work_dir/loss.png)"
    )
    args = parser.parse_args()
    series = read_scalars(args.work_dir)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(series)
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        steps = sorted(series[key])
        ax.plot(steps, [series[key][s] for s in steps], marker=".", lw=1)
        ax.set_title(key)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.suptitle(str(args.work_dir))
    fig.tight_layout()
    out = args.out or args.work_dir / "loss.png"
    fig.savefig(out, dpi=120)
    for key in keys:
        steps = sorted(series[key])
        print(f"{key}: first {series[key][steps[0]]:.4f} -> last {series[key][steps[-1]]:.4f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
