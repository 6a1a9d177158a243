"""Collect the validation top-1 of fine-tuning runs into one JSON (last epoch and the curve).

Each argument is ``LABEL=WORK_DIR``: a ``tools/train.py`` work directory of
``lut_vit-tiny_finetune_toy_cpu.py``; the label names the pre-training run (``"MAE s0"``, as
in the ``evaluate_features.py`` results). If the work directory holds ``heldout_test.json``
(``tools/test.py ... --out WORK_DIR/heldout_test.json --out-item metrics`` on the held-out toy
test set, docs/evaluation.md point 9), its top-1 is recorded as ``test_top1``. From the
repository root:

    python docs/evaluation/scripts/collect_finetune.py OUT.json "MAE s0=/tmp/ft/runs/mae_s0" ...
"""

import json
import sys
from pathlib import Path

from mmengine.config import Config

results = []
for arg in sys.argv[2:]:
    label, work_dir = arg.split("=", 1)
    (scalars,) = Path(work_dir).glob("*/vis_data/scalars.json")
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    curve = [[r["step"], r["accuracy/top1"]] for r in rows if "accuracy/top1" in r]
    cfg = Config.fromfile(str(scalars.parent / "config.py"))
    init = cfg.model.backbone.init_cfg
    if curve[-1][0] != cfg.train_cfg.max_epochs:
        raise SystemExit(f"{work_dir}: last validation at epoch {curve[-1][0]}, run unfinished")
    result = dict(
        label=label,
        checkpoint=init.checkpoint if init else None,
        lr=cfg.optim_wrapper.optimizer.lr,
        layer_decay=cfg.optim_wrapper.paramwise_cfg.layer_decay_rate,
        finetune_top1=curve[-1][1],
        curve=curve,
    )
    heldout = Path(work_dir) / "heldout_test.json"
    if heldout.exists():
        result["test_top1"] = json.loads(heldout.read_text())["accuracy/top1"]
    results.append(result)
settings = dict(config=Path(cfg.filename).name, seed=cfg.randomness.seed)
Path(sys.argv[1]).write_text(json.dumps(dict(settings=settings, results=results), indent=2) + "\n")
