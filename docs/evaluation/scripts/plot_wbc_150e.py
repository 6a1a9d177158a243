"""Bar chart of the 150-epoch frozen-feature results per method (mean over seeds, seeds as dots).

Reads the JSON written by ``tools/analysis/evaluate_features.py --out`` whose labels are
``"<method> s<seed>"``:  python plot_wbc_150e.py FEATURES.json OUT.png
"""

import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = json.load(open(sys.argv[1]))["results"]
values = defaultdict(list)  # (method, metric, pooling) -> one value per seed
for r in rows:
    method = r["label"].rsplit(" s", 1)[0]
    for metric in ("knn_top1", "linear_top1"):
        values[method, metric, r["pooling"]].append(r[metric])
methods = list(dict.fromkeys(k[0] for k in values))
panels = [(m, p) for m in ("knn_top1", "linear_top1") for p in ("cls", "mean")]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (metric, pooling) in zip(axes, panels):
    for i, method in enumerate(methods):
        seeds = values[method, metric, pooling]
        ax.bar(i, sum(seeds) / len(seeds), color=f"C{i}", alpha=0.6)
        ax.plot([i] * len(seeds), seeds, "k.", ms=6)
    ax.set_xticks(range(len(methods)), methods, rotation=20, fontsize=8)
    ax.set_ylim(10, None)  # chance level (10 classes)
    ax.set_title(f"{'k-NN' if metric == 'knn_top1' else 'linear probe'} top-1 %, {pooling}")
    ax.grid(axis="y", alpha=0.3)
title = "Frozen features after 150 epochs (bars: mean over seeds; dots: seeds; axes from chance)"
fig.suptitle(title, fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
