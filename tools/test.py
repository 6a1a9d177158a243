"""Test (and evaluate) a checkpoint with an mmpretrain or mmsegmentation config.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Multi-GPU: ``tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]``. The metrics (top-1,
mIoU, ...) are logged at the end and, with ``--out-item metrics``, dumped to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

import mmengine
from mmengine.config import Config, DictAction

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

import lut_plugin.utils as utils  # noqa: E402  (also registers LUT's components)


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
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override some settings in the used config, the key-value pair "
        "in xxx=yyy format will be merged into config file. If the value to "
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        "Note that the quotation marks are necessary and that no white space "
        "is allowed.",
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
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher",
    )
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    if args.out is None and args.out_item is not None:
        parser.error("--out-item needs --out")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)

    cfg = Config.fromfile(args.config)
    cfg = utils.merge_test_args(cfg, args)
    cfg = utils.apply_runtime_fixes(cfg)
    scope = utils.config_scope(cfg)

    runner = utils.build_runner(cfg)
    if scope != "mmseg" and args.out and args.out_item in ("pred", None):
        from mmengine.evaluator import DumpResults

        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))

    metrics = runner.test()

    if scope != "mmseg" and args.out and args.out_item == "metrics":
        mmengine.dump(metrics, args.out)
    return metrics


if __name__ == "__main__":
    main()
