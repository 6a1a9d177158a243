"""Fine-tuning learning rate and layer decay chosen per method: the sweep and its check.

Reads the JSON of ``collect_finetune.py`` whose labels are ``"<method> s<seed>"`` and whose
runs differ in ``lr`` / ``layer_decay``. Seed 0 of each method chooses the setting (best
last-epoch top-1). The other seeds, fine-tuned with point 7's setting (lr 5e-4, layer decay
0.65), the chosen ones and any other run on them, check the choice and compare the methods
(mean +- s.d., Welch's t-test of each LUT setting against each MAE setting). Left panel: the
seed-0 sweep; right panel: the other seeds. The choice is always made on the validation top-1
(``finetune_top1``); METRIC (default ``finetune_top1``) is what is shown and compared, e.g.
``test_top1``, the held-out test set's top-1 (docs/evaluation.md point 9). From the
repository root:

    python docs/evaluation/scripts/plot_finetune_sweep.py SWEEP.json OUT.png [METRIC]
"""

import json
import sys

import matplotlib
from scipy.stats import ttest_ind

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, "tools/analysis")
from compare_lut_mae import summarise  # noqa: E402

BASELINE = (5e-4, 0.65)  # the setting of docs/evaluation.md point 7, before the sweep
CHOICE = "finetune_top1"  # the validation top-1 chooses the setting
METRIC = sys.argv[3] if len(sys.argv) > 3 else CHOICE
SPLIT = "validation" if METRIC == CHOICE else "held-out test"


def top1_stats(rows: list[dict]) -> dict:
    """Mean, s.d. and values of the top-1 per (method, setting), in the rows' order."""
    table = summarise(rows, metrics=(METRIC,))
    return {(e["encoder"], e["pooling"]): e[METRIC] for e in table}


def stats(stat: dict) -> str:
    return f"{stat['mean']:5.1f} +- {stat['sd']:.1f} (n={len(stat['values'])})"


def versus(stat: dict, mae: dict) -> str:
    p = ttest_ind(stat["values"], mae["values"], equal_var=False).pvalue
    return f"{stat['mean'] - mae['mean']:+.1f}, Welch p={p:.2f}"


runs = []
for r in json.load(open(sys.argv[1]))["results"]:
    method, seed = r["label"].rsplit(" s", 1)
    # summarise groups by (encoder, pooling): here (method, fine-tuning setting)
    setting = (r["lr"], r["layer_decay"])
    runs.append(
        dict(r, method=method, encoder=method, seed=int(seed), setting=setting, pooling=setting)
    )
methods = list(dict.fromkeys(r["method"] for r in runs))

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
chosen = {}
for i, method in enumerate(methods):
    seed0 = sorted(
        ((r["setting"], r) for r in runs if r["method"] == method and r["seed"] == 0),
        key=lambda s: s[0],
    )
    chosen[method] = max(seed0, key=lambda s: (s[1][CHOICE], s[0] == BASELINE))[0]
    sweep = [(setting, r[METRIC]) for setting, r in seed0]
    print(
        f"{method} seed 0 ({SPLIT}): "
        + ", ".join(f"lr {lr:g} ld {ld:g}: {top1:.1f}" for (lr, ld), top1 in sweep)
    )
    for ld, style in ((0.65, "o-"), (0.85, "s--")):
        points = [(lr, top1) for (lr, d), top1 in sweep if d == ld]
        if points:
            left.plot(
                *zip(*points), style, color=f"C{i}", mfc="none", label=f"{method}, layer decay {ld}"
            )
lrs = sorted({r["setting"][0] for r in runs})
left.set_xscale("log")
left.set_xticks(lrs, [f"{lr:g}" for lr in lrs], fontsize=8)
left.minorticks_off()
left.set_xlabel("fine-tuning learning rate (batch 64)")
left.set_ylabel(f"{SPLIT} top-1 % after 50 epochs")
left.set_title("Pre-training seed 0: the sweep", fontsize=10)
left.grid(alpha=0.3)
left.legend(fontsize=8)

# Every setting that was run on the other seeds, per method (point 7's first).
order = sorted(
    runs, key=lambda r: (methods.index(r["method"]), r["setting"] != BASELINE, r["setting"])
)
groups = top1_stats([r for r in order if r["seed"] > 0])
for x, ((method, (lr, ld)), stat) in enumerate(groups.items()):
    name = (
        "point 7" if (lr, ld) == BASELINE else "chosen" if (lr, ld) == chosen[method] else "other"
    )
    alpha = 0.7 if name == "chosen" else 0.35
    right.bar(x, stat["mean"], color=f"C{methods.index(method)}", alpha=alpha)
    right.plot([x] * len(stat["values"]), stat["values"], "k.", ms=6)
    right.text(x, 10.5, f"{name}\nlr {lr:g}\nld {ld:g}", ha="center", fontsize=7)
right.set_xticks(range(len(groups)), [method for method, _ in groups], fontsize=7, rotation=12)
right.set_ylim(10, None)  # chance level (10 classes)
right.set_title("Pre-training seeds 1-4 (not used for the choice)", fontsize=10)
right.set_ylabel(f"{SPLIT} top-1 %")
right.grid(axis="y", alpha=0.3)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)

for (method, (lr, ld)), stat in groups.items():
    print(f"seeds 1-4, {method:<14} lr {lr:g} ld {ld:g}: {stats(stat)}")
    for (other, (mae_lr, mae_ld)), mae in groups.items():
        if method != "MAE" and other == "MAE":
            print(f"    vs MAE at lr {mae_lr:g} ld {mae_ld:g}: {versus(stat, mae)}")

# All five seeds, at each setting both methods ran on every seed (seed 0 took part in the choice).
five = top1_stats(order)
for setting in sorted({r["setting"] for r in runs}):
    per_method = [five.get((method, setting)) for method in methods]
    if any(stat is None or len(stat["values"]) != 5 for stat in per_method):
        continue
    print(f"seeds 0-4, lr {setting[0]:g} ld {setting[1]:g}:")
    for method, stat in zip(methods, per_method):
        line = f"    {method:<14} {stats(stat)}"
        print(line if method == "MAE" else f"{line}  vs MAE {versus(stat, five['MAE', setting])}")
