"""Frozen-feature evaluation of pre-trained encoders: k-NN, linear probe, collapse indicators.

``--model LABEL CONFIG CHECKPOINT|random [student|teacher]`` (repeated), on the cls token
and the mean of the patch tokens of the config's toy train / val splits, ``--data DIR`` or
``--test-images N`` held-out toy images. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # a checkout, not installed
import lut_plugin  # noqa: E402,F401  (registers the components)
from lut_plugin.datasets import LUTToyShapesDataset  # noqa: E402
from lut_plugin.evaluation import features as feat  # noqa: E402


def dataset_cfgs(config: str, data: Path | None = None, splits=("train", "val"),
                 test_images: int | None = None) -> tuple[dict, dict]:  # fmt: skip
    """The labelled train and val dataset configs (see the module's docstring)."""
    if data is not None:
        if test_images:
            raise ValueError("--test-images applies to the embedded toy data, not --data")
        return tuple(dict(type="CustomDataset", data_root=str(data), data_prefix=s) for s in splits)
    train, val = feat.split_dataset_cfgs(config, splits)
    if test_images is not None:
        if test_images < 1 or "num_val" not in val:
            raise ValueError(f"--test-images needs >= 1 and the embedded toy set: {test_images}")
        root = str(val.get("data_root", LUTToyShapesDataset.DEFAULT_ROOT)).rstrip("/")
        val.update(data_root=f"{root}_test", split="val", num_train=10, num_val=test_images,
                   seed=val.get("seed", 0) + 1)  # fmt: skip
    return train, val


def evaluate_models(models: list, cfgs: tuple[dict, dict], pixels: bool = False,
                    batch_size: int = 256, **kwargs) -> list[dict]:  # fmt: skip
    """Rows ``{label, encoder, pooling, <metrics>, seconds}`` of ``(label, config, checkpoint,
    encoder)`` models; ``kwargs``: ``k``, ``temperature``, ``probe_epochs``, ``seed``."""
    data, rows = {}, []
    for label, config, checkpoint, name in [*models, *[("pixels", None, None, None)] * pixels]:
        start = time.perf_counter()
        if config is None:  # the raw pixels of the first model's images
            encoder, splits, name = None, next(iter(data.values())), "raw pixels"
        else:
            encoder, pre = feat.load_encoder(config, checkpoint, name, kwargs.get("seed", 0))
            size = feat.encoder_input_size(encoder)
            if size not in data:
                data[size] = feat.labelled_splits(*cfgs, size, pre, batch_size)
            splits, name = data[size], "random init" if checkpoint == "random" else name
        for pooling, metrics in feat.evaluate_encoder(encoder, *splits, **kwargs).items():
            rows.append(dict(label=label, encoder=name, pooling=pooling, **metrics,
                             seconds=round(time.perf_counter() - start, 2)))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", nargs="+", action="append", required=True,
                   metavar="LABEL CONFIG CHECKPOINT [student|teacher]")  # fmt: skip
    p.add_argument("--data", type=Path, help="image folder: train/ and val/ class folders")
    p.add_argument("--splits", nargs=2, default=("train", "val"), metavar=("TRAIN", "VAL"))
    p.add_argument("--test-images", type=int, metavar="N", help="held-out toy test images")
    p.add_argument("--pixels", action="store_true", help="add the raw-pixel baseline")
    p.add_argument("--k", type=int, default=20, help="k-NN neighbours")
    p.add_argument("--temperature", type=float, default=0.07, help="k-NN temperature")
    p.add_argument("--probe-epochs", type=int, default=100, help="0 skips the probe")
    p.add_argument("--seed", type=int, default=0, help="seed of 'random' and the probe")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", type=Path, help="JSON file to write")
    args = p.parse_args(argv)
    for spec in args.model:
        if len(spec) not in (3, 4) or spec[3:] not in ([], ["student"], ["teacher"]):
            p.error(f"--model takes LABEL CONFIG CHECKPOINT [student|teacher], got {spec}")
    models = [(*s[:3], s[3] if len(s) == 4 else "student") for s in args.model]
    settings = {key: getattr(args, key) for key in ("k", "temperature", "probe_epochs", "seed")}
    cfgs = dataset_cfgs(models[0][1], args.data, tuple(args.splits), args.test_images)
    rows = evaluate_models(models, cfgs, args.pixels, args.batch_size, **settings)
    print("| model | encoder | pooling | k-NN top-1 % | linear top-1 % | eff. rank | "
          "std(l2) x sqrt(D) |\n" + "|---" * 7 + "|")  # fmt: skip
    for r in rows:
        print(f"| {r['label']} | {r['encoder']} | {r['pooling']} | {r['knn_top1']:.1f} | "
              f"{r.get('linear_top1', float('nan')):.1f} | {r['effective_rank']:.1f} | "
              f"{r['std_l2'] * r['dim'] ** 0.5:.2f} |")  # fmt: skip
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = dict(data=str(args.data or models[0][1]), splits=cfgs, settings=settings,
                      results=rows)  # fmt: skip
        args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
