"""Test (and evaluate) a checkpoint with an mmpretrain or mmsegmentation config.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR]
        [--show-dir DIR] [--unsafe-load] [--cfg-options k=v ...] [--launcher none|pytorch|...]

Multi-GPU: ``tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]``. The metrics (top-1,
mIoU, ...) are logged at the end and, with ``--out-item metrics``, dumped to ``--out``.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from copy import deepcopy

import mmengine
from mmengine.config import Config, ConfigDict

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # for tools/train.py's helpers
from train import (  # noqa: E402  (registers LUT's components)
    build_runner,
    merge_common_args,
    parse_with_common_args,
    set_dataloader_defaults,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test (and eval) a model")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument(
        "--work-dir", help="the directory to save the file containing evaluation metrics"
    )
    parser.add_argument(
        "--out",
        help="mmpretrain configs: the file to dump predictions (or metrics, see "
        "--out-item) to; mmseg configs: the directory for prediction images",
    )
    parser.add_argument(
        "--out-item",
        choices=["metrics", "pred"],
        help="(mmpretrain configs) dump metrics or predictions; defaults to predictions",
    )
    parser.add_argument("--amp", action="store_true", help="enable automatic-mixed-precision test")
    parser.add_argument("--show-dir", help="directory where painted images will be saved")
    parser.add_argument("--show", action="store_true", help="show prediction results in a window")
    parser.add_argument(
        "--interval", type=int, default=1, help="visualize per interval samples (mmpretrain)"
    )
    parser.add_argument("--wait-time", type=float, default=2, help="display time of every window")
    parser.add_argument(
        "--no-pin-memory",
        action="store_true",
        help="whether to disable the pin_memory option in dataloaders.",
    )
    parser.add_argument("--tta", action="store_true", help="test-time augmentation")
    args = parse_with_common_args(parser, argv)
    if args.out is None and args.out_item is not None:
        parser.error("--out-item needs --out")
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmpretrain's / mmseg's ``tools/test.py`` do.

    ``--out``: mmpretrain configs dump the predictions (``DumpResults``, added in :func:`main`)
    or the metrics (``--out-item metrics``); mmseg configs write prediction images to that
    directory. ``--show-dir`` turns on the visualization hook of either.
    """
    scope = cfg.get("default_scope", None)
    missing = [k for k in ("test_dataloader", "test_cfg", "test_evaluator") if cfg.get(k) is None]
    if missing:  # a pre-training config: mmengine would only fail once the runner is built
        raise ValueError(
            f"{args.config} has no {', '.join(missing)}, so there is nothing to test (a "
            "pre-training config?). Test a fine-tuning, linear-probing or segmentation config "
            "with this checkpoint, or evaluate frozen features with "
            "tools/analysis/evaluate_features.py."
        )
    merge_common_args(cfg, args)
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = cfg.get("test_cfg", None) or ConfigDict()
        cfg.test_cfg.fp16 = True

    if args.show or args.show_dir is not None:
        if "visualization" not in (cfg.get("default_hooks", None) or {}):
            raise ValueError(
                "--show/--show-dir need `default_hooks.visualization` in the config, "
                "e.g. visualization=dict(type='VisualizationHook')."
            )
        vis = cfg.default_hooks.visualization
        if scope == "mmseg":
            vis.draw = True
            if args.show:
                vis.show, vis.wait_time = True, args.wait_time
            if args.show_dir:
                cfg.visualizer.save_dir = args.show_dir
        else:
            vis.update(
                enable=True,
                show=args.show,
                wait_time=args.wait_time,
                out_dir=args.show_dir,
                interval=args.interval,
            )

    if args.tta:
        if scope == "mmpretrain":
            cfg.setdefault("tta_model", dict(type="mmpretrain.AverageClsScoreTTA"))
            if "tta_pipeline" not in cfg:
                test_pipeline = cfg.test_dataloader.dataset.pipeline
                cfg.tta_pipeline = deepcopy(test_pipeline)
                flips = [dict(type="RandomFlip", prob=1.0), dict(type="RandomFlip", prob=0.0)]
                cfg.tta_pipeline[-1] = dict(
                    type="TestTimeAug", transforms=[flips, [test_pipeline[-1]]]
                )
            cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        else:
            cfg.tta_model.module = cfg.model
            cfg.model = cfg.tta_model
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    if args.out is not None and scope == "mmseg":
        cfg.test_evaluator["output_dir"] = args.out
        cfg.test_evaluator["keep_results"] = True
    defaults = dict(pin_memory=True, collate_fn=dict(type="default_collate"))
    set_dataloader_defaults(cfg, args, defaults if scope == "mmpretrain" else {})
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = build_runner(cfg)
    mmseg = cfg.get("default_scope", None) == "mmseg"
    if not mmseg and args.out and args.out_item in ("pred", None):
        from mmengine.evaluator import DumpResults

        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    if not mmseg and args.out and args.out_item == "metrics":
        mmengine.dump(metrics, args.out)
    return metrics


if __name__ == "__main__":
    main()
