"""Test a checkpoint with an mmpretrain or mmseg config (metrics logged; ``--out``: mmpretrain
dumps predictions, or with ``--out-item metrics`` the metrics, mmseg writes the predicted masks
to that folder). Multi-GPU: ``tools/dist_test.sh CONFIG CHECKPOINT GPUS``."""

from __future__ import annotations

import argparse
import os.path as osp
import sys

import mmengine
from mmengine.config import Config
from mmengine.evaluator import DumpResults

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from train import build_runner, common_args, merge_common  # noqa: E402


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmpretrain's / mmseg's ``tools/test.py`` do."""
    missing = [k for k in ("test_dataloader", "test_cfg", "test_evaluator") if cfg.get(k) is None]
    if missing:  # a pre-training config: mmengine would only fail once the runner is built
        raise ValueError(f"{args.config} has no {', '.join(missing)}, so there is nothing to "
                         "test (a pre-training config?). Test a fine-tuning, linear-probing or "
                         "segmentation config with this checkpoint, or evaluate frozen features "
                         "with tools/analysis/evaluate_features.py.")  # fmt: skip
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = {**(cfg.get("test_cfg") or {}), "fp16": True}
    if args.out is not None and cfg.get("default_scope") == "mmseg":
        cfg.test_evaluator.update(output_dir=args.out, keep_results=True)
    return merge_common(cfg, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test (and evaluate) a model")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--out", help="mmpretrain: file for predictions or metrics; mmseg: "
                        "folder for the predicted masks")  # fmt: skip
    parser.add_argument("--out-item", choices=["metrics", "pred"], help="(mmpretrain) what "
                        "--out holds; defaults to the predictions")  # fmt: skip
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    args = common_args(parser, argv)
    if args.out is None and args.out_item is not None:
        parser.error("--out-item needs --out")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = build_runner(cfg)
    out = args.out if cfg.get("default_scope") != "mmseg" else None  # mmpretrain's --out
    if out and args.out_item != "metrics":
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
    metrics = runner.test()
    if out and args.out_item == "metrics":
        mmengine.dump(metrics, out)
    return metrics


if __name__ == "__main__":
    main()
