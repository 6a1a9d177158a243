"""Train with an mmpretrain or mmsegmentation config (LUT's components registered).

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp] [--auto-scale-lr]
        [--unsafe-load] [--compile] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Multi-GPU: ``tools/dist_train.sh CONFIG GPUS [ARGS]``; slurm: ``tools/slurm_train.sh``.
The config's ``default_scope`` says whether it is an mmpretrain or an mmseg config; the run
goes through ``LUTRunner`` (see docs/launchers.md and docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, ConfigDict, DictAction

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

from lut_plugin.mmpretrain.engine import LUTRunner  # noqa: E402  (registers LUT's components)


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
    return parse_with_common_args(parser, argv)


def parse_with_common_args(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """Add the options tools/train.py and tools/test.py share, parse, export ``LOCAL_RANK``."""
    parser.add_argument(
        "--unsafe-load",
        action="store_true",
        help="unpickle checkpoints fully (config: unsafe_load=True); only for files you trust",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help='override config settings: key=value, lists as key="[a,b]" (quoted, no spaces)',
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


def merge_common_args(cfg: Config, args: argparse.Namespace) -> None:
    """``--launcher``, ``--work-dir`` (default ``work_dirs/<config name>``), ``--unsafe-load``."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.unsafe_load:
        cfg.unsafe_load = True


def set_dataloader_defaults(cfg: Config, args: argparse.Namespace, defaults: dict) -> None:
    """Fill dataloader defaults (those of the upstream launcher) and apply ``--no-*`` flags."""
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if cfg.get(key, None) is None:
            continue
        loader = ConfigDict(defaults)
        loader.update(cfg[key])
        if getattr(args, "no_pin_memory", False):
            loader.pin_memory = False
        if getattr(args, "no_persistent_workers", False):
            loader.persistent_workers = False
        cfg[key] = loader


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmpretrain's ``tools/train.py`` does."""
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    merge_common_args(cfg, args)
    if args.amp:  # without a GPU, LUTRunner falls back to OptimWrapper with a warning
        type_ = cfg.optim_wrapper.get("type", "OptimWrapper")
        if type_ not in ("OptimWrapper", "AmpOptimWrapper"):
            raise ValueError(f"--amp needs optim_wrapper type OptimWrapper, not {type_!r}.")
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":  # the latest checkpoint of work_dir
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        if not isinstance(cfg.get("auto_scale_lr", None), dict):
            raise ValueError("--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)`.")
        cfg.auto_scale_lr.enable = True
    if args.compile:
        cfg.custom_hooks = [
            *cfg.get("custom_hooks", []),
            dict(type="LUTCompileTransformerBlocksHook"),
        ]
    defaults = dict(
        pin_memory=True, persistent_workers=True, collate_fn=dict(type="default_collate")
    )
    set_dataloader_defaults(cfg, args, defaults if cfg.get("default_scope") == "mmpretrain" else {})
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def build_runner(cfg: Config) -> LUTRunner:
    """``LUTRunner``, or the registered ``runner_type`` of the config."""
    if "runner_type" not in cfg:
        return LUTRunner.from_cfg(cfg)
    from mmengine.registry import RUNNERS, init_default_scope

    init_default_scope(cfg.get("default_scope", "mmengine"))
    return RUNNERS.build(cfg)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    build_runner(cfg).train()


if __name__ == "__main__":
    main()
