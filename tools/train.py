"""Train with an mmpretrain or mmsegmentation config (LUT's components registered).

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH|auto]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Multi-GPU: ``tools/dist_train.sh CONFIG GPUS [ARGS]``; slurm: ``tools/slurm_train.sh``.
The config's ``default_scope`` says whether it is an mmpretrain or an mmseg config.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

import lut_plugin.utils as utils  # noqa: E402  (also registers LUT's components)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a model (mmpretrain or mmseg config)")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and models")
    parser.add_argument(
        "--resume",
        nargs="?",
        type=str,
        const="auto",
        help="resume from this checkpoint; without a path, from the latest checkpoint "
        "in the work directory",
    )
    parser.add_argument(
        "--amp", action="store_true", help="enable automatic-mixed-precision training"
    )
    parser.add_argument(
        "--compile", action="store_true", help="compile the transformer blocks (torch.compile)"
    )
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="whether not to evaluate the checkpoint during training",
    )
    parser.add_argument(
        "--auto-scale-lr",
        action="store_true",
        help="scale the learning rate by the actual over the config's base batch size",
    )
    parser.add_argument(
        "--no-pin-memory",
        action="store_true",
        help="whether to disable the pin_memory option in dataloaders.",
    )
    parser.add_argument(
        "--no-persistent-workers",
        action="store_true",
        help="whether to disable the persistent_workers option in dataloaders.",
    )
    parser.add_argument(
        "--no-resumable-rng",
        action="store_true",
        help="do not add ResumableRNGHook (which makes a resumed run draw the same "
        "random numbers as an uninterrupted one)",
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
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    cfg = Config.fromfile(args.config)
    cfg = utils.merge_train_args(cfg, args)
    cfg = utils.apply_runtime_fixes(cfg)
    if args.compile:
        cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="CompileTransformerBlocksHook")]
    if not args.no_resumable_rng:
        utils.add_resumable_rng_hook(cfg)

    runner = utils.build_runner(cfg)
    runner.train()


if __name__ == "__main__":
    main()
