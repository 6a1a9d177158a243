"""Draws step.png from probe_results.jsonl (run from the repository root)."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = Path(__file__).parent
rows = [json.loads(line) for line in (here / "probe_results.jsonl").read_text().splitlines()]
labels = {
    ("mae", "base"): "MAE",
    ("lut", "base"): "LUT",
    ("lut", "teacher-bf16"): "LUT, teacher's\nstream in bf16",
    ("lut", "teacher-bf16-gelu"): "LUT, teacher's stream\nin bf16 + fused GELU",
}
fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1.2, 1]})
order = list(labels)
for i, key in enumerate(order):
    runs = [r["images_per_s"] for r in rows if (r["kind"], r["variant"]) == key]
    ax.bar(i, sum(runs) / len(runs), color="tab:gray" if key[0] == "mae" else "tab:blue")
    ax.plot([i] * len(runs), runs, "k.", ms=8)
    ax.text(i, sum(runs) / len(runs) + 60, f"{sum(runs) / len(runs):,.0f}", ha="center")
ax.axhline(2500, color="tab:red", ls="--", label="target for LUT: 2,500 images/s")
ax.set_xticks(range(len(order)), [labels[k] for k in order], fontsize=8)
ax.set_ylabel("images/s (dots: single runs)")
ax.set_title("ViT-B/16, batch 512, bf16, whole loss compiled, one H100")
ax.legend(loc="upper right")
base = next(r for r in rows if "categories_ms" in r)
cats = base["categories_ms"]
bx.barh(list(cats)[::-1], list(cats.values())[::-1], color="tab:blue")
for y, v in enumerate(list(cats.values())[::-1]):
    bx.text(v + 1, y, f"{v:.1f} ms", va="center", fontsize=8)
bx.set_xlabel("GPU kernel time per LUT step, ms")
bx.set_title(f"Where the compiled LUT step goes ({base['kernel_ms']:.0f} ms of kernels)")
bx.set_xlim(0, max(cats.values()) * 1.2)
fig.tight_layout()
fig.savefig(here / "step.png", dpi=110)
