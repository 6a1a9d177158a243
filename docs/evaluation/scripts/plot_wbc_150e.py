"""Bar chart of the 150-epoch frozen-feature (and fine-tuning) results per method.

Reads the JSON written by ``tools/analysis/evaluate_features.py --out`` whose labels are
``"<method> s<seed>"`` and, optionally, the fine-tuning JSON of ``collect_finetune.py`` (same
labels), averages over seeds with ``compare_lut_mae.summarise`` (bars: means; dots: seeds) and
prints each measure's mean +- s.d. per method with Welch's t-test of every LUT method against
MAE. With fine-tuning results it also draws their validation curves, ``<OUT>_curves.png``.
From the repository root:

    python docs/evaluation/scripts/plot_wbc_150e.py FEATURES.json OUT.png [FINETUNE.json]
"""

import json
import sys

import matplotlib
from scipy.stats import ttest_ind

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, "tools/analysis")
from compare_lut_mae import summarise  # noqa: E402


def rows_of(record: dict, pooling: str | None = None) -> list[dict]:
    """A JSON record's results with ``encoder`` (method) and ``seed`` from their labels."""
    rows = []
    for r in record["results"]:
        method, seed = r["label"].rsplit(" s", 1)
        rows.append(dict(r, encoder=method, seed=int(seed), pooling=pooling or r["pooling"]))
    return rows


features = json.load(open(sys.argv[1]))
table = {(e["encoder"], e["pooling"]): e for e in summarise(rows_of(features))}
panels = [(m, p) for m in ("knn_top1", "linear_top1") for p in ("cls", "mean")]
titles = {"knn_top1": "k-NN", "linear_top1": "linear probe", "finetune_top1": "fine-tuning"}
finetune_runs = (
    rows_of(json.load(open(sys.argv[3])), pooling="end-to-end") if len(sys.argv) > 3 else []
)
if finetune_runs:
    finetune = summarise(finetune_runs, metrics=("finetune_top1",))
    table.update({(e["encoder"], e["pooling"]): e for e in finetune})
    panels.append(("finetune_top1", "end-to-end"))
methods = list(dict.fromkeys(method for method, _ in table))
fig, axes = plt.subplots(1, len(panels), figsize=(3.25 * len(panels), 3.4))
for ax, (metric, pooling) in zip(axes, panels):
    print(f"{titles[metric]}, {pooling}:")
    mae = table["MAE", pooling][metric]
    for i, method in enumerate(methods):
        stat = table[method, pooling][metric]
        ax.bar(i, stat["mean"], color=f"C{i}", alpha=0.6)
        ax.plot([i] * len(stat["values"]), stat["values"], "k.", ms=6)
        line = f"  {method:<16} {stat['mean']:5.1f} +- {stat['sd']:.1f} (n={len(stat['values'])})"
        if method != "MAE":
            test = ttest_ind(stat["values"], mae["values"], equal_var=False)
            line += f"  vs MAE {stat['mean'] - mae['mean']:+.1f}, Welch p={test.pvalue:.2f}"
        print(line)
    ax.set_xticks(range(len(methods)), methods, rotation=20, fontsize=8)
    ax.set_ylim(10, None)  # chance level (10 classes)
    ax.set_title(f"{titles[metric]} top-1 %, {pooling}")
    ax.grid(axis="y", alpha=0.3)
title = (
    f"After 150 epochs of pre-training, evaluated on the {features['splits'][1]} split "
    "(bars: mean over seeds; dots: seeds; axes from chance)"
)
fig.suptitle(title, fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)

if finetune_runs:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, method in enumerate(methods):
        for j, run in enumerate(r for r in finetune_runs if r["encoder"] == method):
            epochs, top1 = zip(*run["curve"])
            ax.plot(epochs, top1, f"C{i}", alpha=0.8, label=method if j == 0 else None)
    ax.set_xlabel("fine-tuning epoch")
    ax.set_ylabel("validation top-1 %")
    ax.set_title("Fine-tuning the 150-epoch encoders (one line per pre-training seed)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2].removesuffix(".png") + "_curves.png", dpi=110)
