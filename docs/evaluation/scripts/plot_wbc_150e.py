"""Bar chart of the 150-epoch frozen-feature results per method (mean over seeds, seeds as dots).

Reads the JSON written by ``tools/analysis/evaluate_features.py --out`` whose labels are
``"<method> s<seed>"``, and averages over seeds with ``compare_lut_mae.summarise``. From the
repository root:  python docs/evaluation/scripts/plot_wbc_150e.py FEATURES.json OUT.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, "tools/analysis")
from compare_lut_mae import summarise  # noqa: E402

rows = []
for r in json.load(open(sys.argv[1]))["results"]:
    method, seed = r["label"].rsplit(" s", 1)
    rows.append(dict(r, encoder=method, seed=int(seed)))
table = {(e["encoder"], e["pooling"]): e for e in summarise(rows)}
methods = list(dict.fromkeys(method for method, _ in table))
panels = [(m, p) for m in ("knn_top1", "linear_top1") for p in ("cls", "mean")]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (metric, pooling) in zip(axes, panels):
    for i, method in enumerate(methods):
        stat = table[method, pooling][metric]
        ax.bar(i, stat["mean"], color=f"C{i}", alpha=0.6)
        ax.plot([i] * len(stat["values"]), stat["values"], "k.", ms=6)
    ax.set_xticks(range(len(methods)), methods, rotation=20, fontsize=8)
    ax.set_ylim(10, None)  # chance level (10 classes)
    ax.set_title(f"{'k-NN' if metric == 'knn_top1' else 'linear probe'} top-1 %, {pooling}")
    ax.grid(axis="y", alpha=0.3)
title = "Frozen features after 150 epochs (bars: mean over seeds; dots: seeds; axes from chance)"
fig.suptitle(title, fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
