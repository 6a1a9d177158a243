"""Draws step.png from steps.jsonl and loop-logs.txt (run from the repository root)."""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = Path(__file__).parent
steps = {r["variant"]: r for r in map(json.loads, (here / "steps.jsonl").read_text().splitlines())}
labels = {
    "mae": "MAE",
    "lut": "LUT",
    "lut-fused-gelu": "LUT\nfuse_teacher_gelu",
    "lut-fused-gelu-flash": "LUT\nfuse_teacher_gelu\n+ flash attention",
}
fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
for i, name in enumerate(labels):
    ips = steps[name]["images_per_s"]
    ax.bar(i, ips, color="tab:gray" if name == "mae" else "tab:blue")
    ax.text(
        i,
        ips * 0.3,
        f"{ips:,.0f}\n({steps[name]['median_step_s']:.4f} s)",
        ha="center",
        fontsize=9,
        color="white",
    )
ax.axhline(2500, color="tab:red", ls="--", label="target for LUT: 2,500 images/s")
ax.set_xticks(range(len(labels)), list(labels.values()), fontsize=8)
ax.set_ylim(0, 5300)
ax.set_ylabel("images/s (median of 10 steps)")
ax.set_title("Bare step: ViT-B/16, batch 512, bf16, whole loss compiled")
ax.legend(loc="upper right")

# tools/train.py --compile, 5-iteration logging intervals after the first 10 (compiling)
runs, name = {}, None
for line in (here / "loop-logs.txt").read_text().splitlines():
    if line.startswith("=== loop "):
        name = line[len("=== loop ") :]
        runs[name] = []
    elif m := re.search(r"\[\s*(\d+)/\d+\].*?time: ([\d.]+)", line):
        if int(m[1]) > 10:
            runs[name].append((int(m[1]), float(m[2])))
for (name, points), marker in zip(runs.items(), "osd"):
    bx.plot(*zip(*points), marker=marker, label=name)
bx.axhline(
    steps["lut"]["median_step_s"],
    color="tab:blue",
    ls=":",
    label="bare LUT step (whole loss compiled, bf16)",
)
bx.set_ylim(0.2, 0.34)
bx.set_xlabel("iteration (mean of the 5 before)")
bx.set_ylabel("s per iteration (mmengine's log)")
bx.set_title("tools/train.py --compile, lut_vitb_400e.py, batch 512")
bx.legend(fontsize=8, loc="lower left")
fig.suptitle("One NVIDIA H100 80GB HBM3, torch 2.11, 2026-11-28")
fig.tight_layout()
fig.savefig(here / "step.png", dpi=110)
