"""Train with an mmpretrain or mmseg config as mmpretrain's ``tools/train.py`` does; the config
chooses the runner (``runner_type``, docs/reliability.md). ``--cpu`` runs a GPU config without a
GPU, printing each change. Multi-GPU, slurm: ``tools/dist_train.sh``, ``tools/slurm_train.sh``."""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from collections.abc import MutableMapping

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # a checkout, not installed
import lut_plugin  # noqa: E402,F401  (registers LUT's components and the runtime)
from lut_plugin.runtime.compat import init_cpu_distributed  # noqa: E402
from lut_plugin.runtime.runner import type_name  # noqa: E402


def common_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Add the options train.py and test.py share, parse, export ``LOCAL_RANK``."""
    parser.add_argument("--work-dir", help="the folder for logs and checkpoints")
    parser.add_argument("--cpu", action="store_true", help="run a GPU config on the CPU "
                        "(no AMP, gloo, BN for SyncBN), printing each change")  # fmt: skip
    parser.add_argument("--unsafe-load", action="store_true",
                        help="unpickle checkpoints fully (only files you trust)")  # fmt: skip
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings: key=value")  # fmt: skip
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)  # torch.distributed
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def _to_bn(node) -> int:
    """Set SyncBN norm configs (and LUT heads' ``norm='syncbn'``) to BN; count them."""
    if isinstance(node, list | tuple):
        return sum(_to_bn(v) for v in node)
    if not isinstance(node, MutableMapping):
        return 0
    count = 0
    if type_name(node.get("type")) in ("SyncBN", "MMSyncBN", "SyncBatchNorm"):
        node["type"], count = "BN", 1
    if str(node.get("norm", "")).lower() == "syncbn":
        node["norm"], count = "bn", count + 1
    return count + sum(_to_bn(v) for v in node.values())


def cpu_config(cfg: Config) -> list[str]:
    """Change a GPU config to run on the CPU; return (and print) each change."""
    notes = []
    wrappers = cfg.get("optim_wrapper") or {}
    if "type" in wrappers or "optimizer" in wrappers:
        wrappers = {"optim_wrapper": wrappers}
    for key, wrapper in wrappers.items():
        kind = type_name(wrapper.get("type")) if isinstance(wrapper, MutableMapping) else None
        if kind == "AmpOptimWrapper":
            wrapper["type"] = "OptimWrapper"
            for arg in ("loss_scale", "dtype", "use_fsdp"):
                wrapper.pop(arg, None)
            notes.append(f"{key}: AmpOptimWrapper -> OptimWrapper (float32)")
    options = [(f"{k}_cfg", "fp16") for k in ("val", "test")]
    options += [(f"{k}_dataloader", "pin_memory") for k in ("train", "val", "test")]
    for key, option in options:
        if (cfg.get(key) or {}).get(option):
            cfg[key][option] = False
            notes.append(f"{key}.{option} -> False")
    if cfg.get("launcher", "none") != "none":
        cfg.env_cfg = {**(cfg.get("env_cfg") or {}), "dist_cfg": {"backend": "gloo"}}
        n_bn = _to_bn(cfg.get("model"))
        # DDP refuses device_ids for CPU modules. Without SyncBN the ranks' BN statistics are
        # kept identical: rank 0's go to all before each step, all are averaged each epoch.
        wrapper = cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel")
        cfg.model_wrapper_cfg = {**wrapper, "device_ids": None, "broadcast_buffers": n_bn > 0}
        if n_bn:
            cfg.custom_hooks = [*(cfg.get("custom_hooks") or []), dict(type="SyncBuffersHook")]
        notes.append(f"distributed: gloo, DDP without device_ids, {n_bn} SyncBN config(s) -> BN")
    for note in notes:
        print(f"--cpu: {note}")
    return notes


def merge_common(cfg: Config, args: argparse.Namespace) -> Config:
    """``--launcher``, ``--work-dir`` (default ``work_dirs/<config name>``), ``--unsafe-load``,
    ``--cfg-options``, then ``--cpu``."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.unsafe_load:
        cfg.unsafe_load = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.cpu:
        cpu_config(cfg)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The config's ``runner_type`` (registered), or mmengine's ``Runner``."""
    init_cpu_distributed(cfg)
    return Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmpretrain's ``tools/train.py`` does."""
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        wrapper = type_name(cfg.optim_wrapper.get("type", "OptimWrapper"))
        if wrapper not in ("OptimWrapper", "AmpOptimWrapper"):
            raise ValueError(f"--amp needs optim_wrapper type OptimWrapper, not {wrapper!r}.")
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume is not None:  # "auto": the latest checkpoint of the work directory
        cfg.resume, cfg.load_from = True, None if args.resume == "auto" else args.resume
    if args.auto_scale_lr:
        if not isinstance(cfg.get("auto_scale_lr"), dict):
            raise ValueError("--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)`.")
        cfg.auto_scale_lr.enable = True
    if args.compile:
        cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="CompileTransformerBlocksHook")]
    return merge_common(cfg, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a model (mmpretrain or mmseg config)")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--resume", nargs="?", const="auto", help="resume from this checkpoint "
                        "(without a path: the latest one in the work directory)")  # fmt: skip
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the lr by batch size")
    parser.add_argument("--compile", action="store_true", help="torch.compile each ViT block")
    parser.add_argument("--no-validate", action="store_true", help="no validation while training")
    return common_args(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    build_runner(merge_args(Config.fromfile(args.config), args)).train()


if __name__ == "__main__":
    main()
