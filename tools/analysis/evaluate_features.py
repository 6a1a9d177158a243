"""Frozen-feature evaluation of pre-trained encoders: k-NN, linear probe, collapse indicators.

For every ``--model`` (label, pre-training config, checkpoint, optionally ``teacher``) the
encoder's features of a labelled train and val split are pooled two ways (cls token, mean
of the patch tokens) and evaluated with weighted k-NN (cosine, k = 20, T = 0.07), MAE's
linear probe (BatchNorm without affine + linear layer, on the fixed features) and two
collapse indicators (effective rank, std of L2-normalised features)::

    CFG=configs/mmpretrain/lut_vit-tiny_toy_cpu.py
    python tools/analysis/evaluate_features.py \\
        --model LUT $CFG work_dirs/lut_vit-tiny_toy_cpu/epoch_100.pth \\
        --model "LUT teacher" $CFG work_dirs/lut_vit-tiny_toy_cpu/epoch_100.pth teacher \\
        --model MAE configs/mmpretrain/mae_vit-tiny_toy_cpu.py \\
            work_dirs/mae_vit-tiny_toy_cpu/epoch_100.pth \\
        --model random $CFG random --pixels --out work_dirs/features.json

The checkpoint may be any pre-training checkpoint of this project (LUT, LUT(SimMIM), MAE)
or ``random`` (the config's encoder as initialised, ``--seed``). Without ``--data`` the
labelled splits are the first config's training dataset with ``split`` set to ``train`` /
``val`` (the embedded toy set); ``--data DIR`` reads an image folder
``DIR/{train,val}/<class>/<image>`` instead; ``--test-images N`` evaluates the embedded toy
set on N held-out test images (generated once, with the next seed, in
``<data_root>_test``) instead of its val split. Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lut_plugin  # noqa: E402,F401  (registers the components)
from lut_plugin.mmpretrain.evaluation import (  # noqa: E402
    RANDOM_INIT,
    encoder_input_size,
    evaluate_encoder,
    evaluate_pixels,
    labelled_splits,
    load_encoder,
    split_dataset_cfgs,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        nargs="+",
        action="append",
        required=True,
        metavar="LABEL CONFIG CHECKPOINT [student|teacher]",
        help="an encoder to evaluate; CHECKPOINT 'random' = freshly initialised",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="image folder with train/ and val/ class folders"
    )
    parser.add_argument("--splits", nargs=2, default=("train", "val"), metavar=("TRAIN", "VAL"))
    parser.add_argument(
        "--test-images", type=int, default=None, metavar="N",
        help="evaluate on N held-out toy test images instead of the val split (embedded data)",
    )  # fmt: skip
    parser.add_argument("--pixels", action="store_true", help="add the raw-pixel baseline")
    parser.add_argument("--k", type=int, default=20, help="k-NN neighbours (default 20)")
    parser.add_argument("--temperature", type=float, default=0.07, help="k-NN T (default 0.07)")
    parser.add_argument(
        "--probe-epochs", type=int, default=100, help="linear-probe epochs; 0 skips the probe"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of 'random' and the probe")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    for spec in args.model:
        if len(spec) not in (3, 4) or (len(spec) == 4 and spec[3] not in ("student", "teacher")):
            parser.error(f"--model takes LABEL CONFIG CHECKPOINT [student|teacher], got {spec}")
    return args


def evaluate_models(
    models: list[tuple[str, str, str, str]],
    data: Path | None = None,
    splits: tuple[str, str] = ("train", "val"),
    pixels: bool = False,
    batch_size: int = 256,
    test_images: int | None = None,
    **kwargs,
) -> list[dict]:
    """Rows ``{label, config, checkpoint, encoder, pooling, <metrics>, seconds}``.

    Args:
        models: ``(label, config, checkpoint, encoder)`` tuples.
        data: Image folder, or None for the first config's training dataset.
        splits: Names of the train and val splits.
        pixels: Add the raw-pixel baseline (label ``'pixels'``).
        batch_size: Images per forward pass.
        test_images: Held-out toy test images in place of the val split.
        **kwargs: ``k``, ``temperature``, ``probe_epochs``, ``seed`` of
            :func:`lut_plugin.evaluation.evaluate_features`.
    """
    dataset_cfgs = split_dataset_cfgs(models[0][1], data, splits, test_images)
    splits_by_size: dict[int, tuple] = {}
    rows = []
    for label, config, checkpoint, encoder_name in models:
        start = time.perf_counter()
        encoder, preprocessor = load_encoder(
            config, checkpoint, encoder_name, kwargs.get("seed", 0)
        )
        size = encoder_input_size(encoder)
        if size not in splits_by_size:
            splits_by_size[size] = labelled_splits(*dataset_cfgs, size, preprocessor, batch_size)
        results = evaluate_encoder(encoder, *splits_by_size[size], **kwargs)
        seconds = time.perf_counter() - start
        encoder_desc = "random init" if checkpoint == RANDOM_INIT else encoder_name
        for pooling, metrics in results.items():
            rows.append(
                dict(label=label, config=str(config), checkpoint=str(checkpoint),
                     encoder=encoder_desc, pooling=pooling, **metrics,
                     seconds=round(seconds, 2))
            )  # fmt: skip
    if pixels:
        train_batches, val_batches, num_classes = next(iter(splits_by_size.values()))
        start = time.perf_counter()
        results = evaluate_pixels(train_batches, val_batches, num_classes, **kwargs)
        for pooling, metrics in results.items():
            rows.append(
                dict(label="pixels", config="", checkpoint="", encoder="raw pixels",
                     pooling=pooling, **metrics,
                     seconds=round(time.perf_counter() - start, 2))
            )  # fmt: skip
    return rows


def format_table(rows: list[dict]) -> str:
    """A markdown table of the rows."""
    lines = [
        "| model | encoder | pooling | k-NN top-1 % | linear top-1 % | eff. rank "
        "| std(l2) x sqrt(D) |",
        "|" + "---|" * 7,
    ]
    for r in rows:
        linear = f"{r['linear_top1']:.1f}" if "linear_top1" in r else "-"
        lines.append(
            f"| {r['label']} | {r['encoder']} | {r['pooling']} | {r['knn_top1']:.1f} | "
            f"{linear} | {r['effective_rank']:.1f} | {r['std_l2'] * r['dim'] ** 0.5:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [(s[0], s[1], s[2], s[3] if len(s) == 4 else "student") for s in args.model]
    settings = dict(
        k=args.k, temperature=args.temperature, probe_epochs=args.probe_epochs, seed=args.seed
    )
    rows = evaluate_models(
        models, args.data, tuple(args.splits), args.pixels, args.batch_size, args.test_images,
        **settings,
    )  # fmt: skip
    print(format_table(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = dict(
            data=str(args.data) if args.data else "training dataset of " + models[0][1],
            splits=list(args.splits) if not args.test_images else ["train", "test"],
            test_images=args.test_images,
            settings=settings,
            results=rows,
        )
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
