"""Config handling shared by ``tools/train.py`` and ``tools/test.py``.

The launchers follow mmpretrain's own ``tools/train.py`` / ``tools/test.py`` for
``mmpretrain`` configs and mmsegmentation's for ``mmseg`` configs (the config's
``default_scope`` decides); both end in mmengine's ``Runner``.
"""

from __future__ import annotations

import logging
import os.path as osp
from argparse import Namespace
from copy import deepcopy
from typing import Any

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from .compat import (
    DATALOADER_KEYS,
    amp_fallback_without_gpu,
    check_checkpoint_file,
    disable_persistent_workers_without_workers,
    dist_fallback_without_gpu,
    init_cpu_distributed,
    strip_collate_fn_scope,
)

__all__ = [
    "config_scope",
    "merge_train_args",
    "merge_test_args",
    "apply_runtime_fixes",
    "add_resumable_rng_hook",
    "build_runner",
]


def config_scope(cfg: Config) -> str:
    """The registry scope of a config (``mmpretrain``, ``mmseg``, ...).

    Args:
        cfg (Config): The config.

    Returns:
        str: ``cfg.default_scope``, or ``'mmengine'`` when it has none.
    """
    return cfg.get("default_scope", None) or "mmengine"


def _set_work_dir(cfg: Config, args: Namespace) -> None:
    # work_dir: CLI > config > ./work_dirs/<config name>
    if getattr(args, "work_dir", None) is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])


def _set_dataloader_defaults(cfg: Config, args: Namespace, defaults: dict) -> None:
    """Fill dataloader defaults (mmpretrain's launchers) and the ``--no-*`` flags."""
    for key in DATALOADER_KEYS:
        if cfg.get(key, None) is None:
            continue
        loader = ConfigDict(deepcopy(defaults))
        loader.update(cfg[key])
        if getattr(args, "no_pin_memory", False):
            loader["pin_memory"] = False
        if getattr(args, "no_persistent_workers", False):
            loader["persistent_workers"] = False
        cfg[key] = loader


def _enable_amp(cfg: Config) -> None:
    optim_wrapper = cfg.get("optim_wrapper", None)
    if optim_wrapper is None:
        raise ValueError("--amp needs an `optim_wrapper` in the config.")
    type_ = optim_wrapper.get("type", "OptimWrapper")
    if isinstance(type_, str) and type_.split(".")[-1] == "AmpOptimWrapper":
        print_log(
            "AMP training is already enabled in your config.",
            logger="current",
            level=logging.WARNING,
        )
        return
    if not (isinstance(type_, str) and type_.split(".")[-1] == "OptimWrapper"):
        raise ValueError(
            f"--amp works when the optim_wrapper type is OptimWrapper, but it is {type_!r}."
        )
    optim_wrapper.type = "AmpOptimWrapper"
    optim_wrapper.setdefault("loss_scale", "dynamic")


def merge_train_args(cfg: Config, args: Namespace) -> Config:
    """Merge the command line of ``tools/train.py`` into the config.

    Args:
        cfg (Config): The config, changed in place.
        args (Namespace): Parsed arguments (``config``, ``work_dir``, ``resume``,
            ``amp``, ``no_validate``, ``auto_scale_lr``, ``no_pin_memory``,
            ``no_persistent_workers``, ``cfg_options``, ``launcher``).

    Returns:
        Config: The same config.

    Raises:
        FileNotFoundError: ``--resume PATH`` names a local file that does not exist.
    """
    if getattr(args, "no_validate", False):
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    _set_work_dir(cfg, args)

    if args.amp:
        _enable_amp(cfg)

    # --resume: 'auto' = latest checkpoint of work_dir, else a path.
    if args.resume == "auto":
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_checkpoint_file(args.resume, "--resume checkpoint")
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if not isinstance(cfg.get("auto_scale_lr", None), dict):
            raise ValueError(
                "--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)` in the config."
            )
        cfg.auto_scale_lr.enable = True

    if config_scope(cfg) == "mmpretrain":
        _set_dataloader_defaults(
            cfg,
            args,
            dict(pin_memory=True, persistent_workers=True, collate_fn=dict(type="default_collate")),
        )
    else:
        _set_dataloader_defaults(cfg, args, {})

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def merge_test_args(cfg: Config, args: Namespace) -> Config:
    """Merge the command line of ``tools/test.py`` into the config.

    ``--out``: mmpretrain configs dump the predictions (``DumpResults``, added by
    the launcher after the runner is built) or the metrics (``--out-item metrics``);
    mmseg configs write prediction images to that directory (``output_dir`` of the
    evaluator). ``--show-dir`` turns on the visualization hook of either.

    Args:
        cfg (Config): The config, changed in place.
        args (Namespace): Parsed arguments (``config``, ``checkpoint``, ``work_dir``,
            ``out``, ``show``, ``show_dir``, ``wait_time``, ``interval``, ``amp``,
            ``tta``, ``no_pin_memory``, ``cfg_options``, ``launcher``).

    Returns:
        Config: The same config.

    Raises:
        FileNotFoundError: The checkpoint is a local path that does not exist.
    """
    check_checkpoint_file(args.checkpoint, "test checkpoint")
    cfg.launcher = args.launcher
    _set_work_dir(cfg, args)
    cfg.load_from = args.checkpoint
    scope = config_scope(cfg)

    if args.amp:
        cfg.test_cfg = cfg.get("test_cfg", None) or ConfigDict()
        cfg.test_cfg.fp16 = True

    show = getattr(args, "show", False)
    if show or args.show_dir is not None:
        hooks = cfg.get("default_hooks", None) or {}
        if "visualization" not in hooks:
            raise ValueError(
                "--show/--show-dir need `default_hooks.visualization` in the config, "
                "e.g. visualization=dict(type='VisualizationHook')."
            )
        vis = cfg.default_hooks.visualization
        if scope == "mmseg":
            vis.draw = True
            if show:
                vis.show = True
                vis.wait_time = args.wait_time
            if args.show_dir:
                cfg.visualizer.save_dir = args.show_dir
        else:
            vis.enable = True
            vis.show = show
            vis.wait_time = args.wait_time
            vis.out_dir = args.show_dir
            vis.interval = getattr(args, "interval", 1)

    if getattr(args, "tta", False):
        if scope == "mmpretrain":
            if "tta_model" not in cfg:
                cfg.tta_model = dict(type="mmpretrain.AverageClsScoreTTA")
            if "tta_pipeline" not in cfg:
                test_pipeline = cfg.test_dataloader.dataset.pipeline
                cfg.tta_pipeline = deepcopy(test_pipeline)
                cfg.tta_pipeline[-1] = dict(
                    type="TestTimeAug",
                    transforms=[
                        [dict(type="RandomFlip", prob=1.0), dict(type="RandomFlip", prob=0.0)],
                        [test_pipeline[-1]],
                    ],
                )
            cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        else:
            cfg.tta_model.module = cfg.model
            cfg.model = cfg.tta_model
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    if args.out is not None and scope == "mmseg":
        cfg.test_evaluator["output_dir"] = args.out
        cfg.test_evaluator["keep_results"] = True

    if scope == "mmpretrain":
        defaults: dict[str, Any] = dict(pin_memory=True, collate_fn=dict(type="default_collate"))
    else:
        defaults = {}
    _set_dataloader_defaults(cfg, args, defaults)

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def add_resumable_rng_hook(cfg: Config) -> bool:
    """Append :class:`ResumableRNGHook` to ``custom_hooks`` unless it is there.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        bool: True if the hook was added.
    """
    hooks = list(cfg.get("custom_hooks", None) or [])
    for hook in hooks:
        type_ = hook.get("type") if isinstance(hook, dict) else type(hook)
        name = type_ if isinstance(type_, str) else getattr(type_, "__name__", "")
        if name.split(".")[-1] == "ResumableRNGHook":
            return False
    hooks.append(dict(type="ResumableRNGHook"))
    cfg.custom_hooks = hooks
    return True


def apply_runtime_fixes(cfg: Config) -> Config:
    """Apply the fixes every run needs on this stack, after the CLI is merged.

    - ``_scope_`` removed from ``collate_fn`` (configs inheriting ``mmpretrain::``);
    - ``persistent_workers`` off where ``num_workers=0``;
    - no GPU: ``AmpOptimWrapper`` → ``OptimWrapper`` and ``fp16`` evaluation off;
      distributed launches use ``gloo`` and BN instead of SyncBN;
    - a local ``load_from`` that does not exist is reported now, naming the file.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        Config: The same config.

    Raises:
        FileNotFoundError: ``load_from`` names a local file that does not exist.
    """
    strip_collate_fn_scope(cfg)
    disable_persistent_workers_without_workers(cfg)
    amp_fallback_without_gpu(cfg)
    dist_fallback_without_gpu(cfg)
    check_checkpoint_file(cfg.get("load_from", None), "load_from")
    return cfg


def build_runner(cfg: Config) -> Any:
    """Build mmengine's ``Runner``, or the registered ``runner_type`` of the config.

    A ``--launcher pytorch`` run without GPUs gets its ``gloo`` process group here
    (see :func:`init_cpu_distributed`).

    Args:
        cfg (Config): The final config.

    Returns:
        Runner: The runner.
    """
    from mmengine.registry import RUNNERS, init_default_scope
    from mmengine.runner import Runner

    init_cpu_distributed(cfg)
    if "runner_type" not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        init_default_scope(config_scope(cfg))
        runner = RUNNERS.build(cfg)
    strict_checkpoint_loading(runner)
    return runner


def strict_checkpoint_loading(runner: Any) -> None:
    """Make ``--resume`` and ``load_from`` refuse a checkpoint that does not fit the model.

    mmengine loads them with ``strict=False``: missing, unexpected or wrongly shaped
    tensors only log a warning and training goes on with those weights left at their
    initial values. Here any mismatch stops the run before the first iteration, with
    the file's name and mmengine's list of offending keys and shapes.

    Args:
        runner (Runner): The runner whose ``load_checkpoint`` becomes strict.
    """
    load = runner.load_checkpoint

    def load_strictly(filename: str, map_location: Any = "cpu", strict: bool = True, **kwargs):
        try:
            return load(filename, map_location=map_location, strict=strict, **kwargs)
        except RuntimeError as exc:
            if "state_dict" not in str(exc) and "size mismatch" not in str(exc):
                raise
            raise RuntimeError(f"checkpoint {filename} does not match the model:\n{exc}") from exc

    runner.load_checkpoint = load_strictly
