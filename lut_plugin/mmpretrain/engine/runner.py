"""LUTRunner: mmengine's Runner with checkpoints people can trust and exact resume."""

from __future__ import annotations

import copy
import logging
from collections.abc import MutableMapping
from typing import Any

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.registry import DATASETS, RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model, find_latest_checkpoint
from torch.utils.data import Dataset

from lut_plugin.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    checkpoint_policy,
    load_checkpoint_file,
)
from lut_plugin.mmpretrain.datasets import NamedSampleDataset

from .hooks import python_drop_rates
from .seeded_sampler import LUTSeededSampler, SeededDataset

_LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")
_SYNC_BN = ("SyncBN", "MMSyncBN", "SyncBatchNorm", "nn.SyncBatchNorm")


def _name(type_: Any) -> str:
    return (type_ if isinstance(type_, str) else getattr(type_, "__name__", "")).split(".")[-1]


def _syncbn_to_bn(node: Any) -> int:
    """Replace SyncBN norm configs (and LUT heads' ``norm='syncbn'``) by BN; count them."""
    count = 0
    if isinstance(node, MutableMapping):
        if _name(node.get("type")) in _SYNC_BN:
            node["type"], count = "BN", count + 1
        if str(node.get("norm", "")).lower() == "syncbn":
            node["norm"], count = "bn", count + 1
        count += sum(_syncbn_to_bn(v) for v in node.values())
    elif isinstance(node, list | tuple):
        count += sum(_syncbn_to_bn(v) for v in node)
    return count


def adapt_config(cfg: MutableMapping, has_gpu: bool | None = None) -> MutableMapping:
    """Make an upstream mmpretrain/mmseg config run here, with LUT's runtime guarantees.

    ``_scope_`` leaves ``collate_fn`` (mmengine would pass it to ``default_collate``);
    ``persistent_workers`` is off without workers; without a GPU, ``AmpOptimWrapper`` becomes
    ``OptimWrapper`` and ``fp16`` evaluation is off (with a warning), ``pin_memory`` is off,
    and a distributed launch uses ``gloo``, BN for SyncBN and DDP without ``device_ids``;
    ``CheckpointHook`` becomes :class:`LUTCheckpointHook`, the training sampler is wrapped in
    :class:`LUTSeededSampler`, and :class:`LUTStepSeedHook` and :class:`LUTFiniteCheckHook`
    are added where missing (see docs/launchers.md and docs/reliability.md).

    Args:
        cfg (MutableMapping): The config, changed in place.
        has_gpu (bool, optional): Override the accelerator detection (for tests).

    Returns:
        MutableMapping: The same config.
    """
    from mmengine.device import is_cuda_available, is_mlu_available, is_npu_available

    if has_gpu is None:
        has_gpu = is_cuda_available() or is_npu_available() or is_mlu_available()
    for key in _LOADERS:
        loader = cfg.get(key)
        if not isinstance(loader, MutableMapping):
            continue
        if isinstance(loader.get("collate_fn"), MutableMapping):
            loader["collate_fn"].pop("_scope_", None)
        if loader.get("persistent_workers") and not loader.get("num_workers", 0):
            loader["persistent_workers"] = False
        if loader.get("pin_memory") and not has_gpu:  # nothing to pin for; torch would warn
            loader["pin_memory"] = False
    notes = []
    if not has_gpu:
        wrappers = cfg.get("optim_wrapper") or {}
        if "type" not in wrappers and "optimizer" not in wrappers:  # one wrapper per optimizer
            wrappers = {k: v for k, v in wrappers.items() if isinstance(v, MutableMapping)}
        else:
            wrappers = {"": wrappers}
        for wrapper in wrappers.values():
            if _name(wrapper.get("type")) == "AmpOptimWrapper":
                wrapper["type"] = "OptimWrapper"
                for key in ("loss_scale", "dtype", "use_fsdp"):
                    wrapper.pop(key, None)
                notes.append("AmpOptimWrapper replaced by OptimWrapper, training in float32")
        for key in ("val_cfg", "test_cfg"):
            if isinstance(cfg.get(key), MutableMapping) and cfg[key].get("fp16"):
                cfg[key]["fp16"] = False
                notes.append(f"{key}.fp16 turned off, evaluating in float32")
        if cfg.get("launcher", "none") != "none":
            env_cfg = dict(cfg.get("env_cfg") or {})
            cfg["env_cfg"] = {
                **env_cfg,
                "dist_cfg": {**env_cfg.get("dist_cfg", {}), "backend": "gloo"},
            }
            n_bn = _syncbn_to_bn(cfg.get("model"))
            # mmengine passes device_ids=[LOCAL_RANK] to DDP, which DDP refuses for CPU modules.
            # Without SyncBN, rank 0's BN statistics go to every rank before each step, and all
            # ranks' are averaged after each epoch, so that the ranks stay identical.
            wrapper = cfg.get("model_wrapper_cfg") or dict(
                type="MMDistributedDataParallel",
                broadcast_buffers=n_bn > 0,
                find_unused_parameters=cfg.get("find_unused_parameters", False),
            )
            wrapper.setdefault("device_ids", None)
            cfg["model_wrapper_cfg"] = wrapper
            if n_bn:
                cfg["custom_hooks"] = [
                    *(cfg.get("custom_hooks") or []),
                    dict(type="SyncBuffersHook"),
                ]
            notes.append(
                f"distributed backend gloo on CPU, {n_bn} SyncBN layer config(s) set to BN"
            )
    for note in notes:
        print_log(f"No GPU found: {note}.", logger="current", level=logging.WARNING)

    train_cfg = cfg.get("train_cfg")
    for key in ("max_epochs", "max_iters"):
        value = train_cfg.get(key) if isinstance(train_cfg, MutableMapping) else None
        if value is not None and not (isinstance(value, int) and value > 0):
            raise ValueError(
                f"train_cfg.{key} must be a positive integer, got {value!r}: nothing would train"
            )
    cfg["default_hooks"] = cfg.get("default_hooks") or {}
    hooks = cfg["default_hooks"]  # (a Config stores a copy of what it is given)
    if "checkpoint" not in hooks:  # mmengine's default
        hooks["checkpoint"] = dict(type="CheckpointHook", interval=1)
    checkpoint = hooks["checkpoint"]
    if isinstance(checkpoint, MutableMapping) and _name(checkpoint.get("type")) == "CheckpointHook":
        checkpoint["type"] = "LUTCheckpointHook"
    train = cfg.get("train_dataloader")
    if isinstance(train, MutableMapping) and "batch_sampler" not in train:
        sampler = train.get("sampler")
        if isinstance(sampler, MutableMapping) and _name(sampler.get("type")) != "LUTSeededSampler":
            train["sampler"] = dict(type="LUTSeededSampler", sampler=sampler)
    custom = list(cfg.get("custom_hooks") or [])
    if train is not None:
        present = {_name(h.get("type")) for h in custom}
        missing = [h for h in ("LUTStepSeedHook", "LUTFiniteCheckHook") if h not in present]
        cfg["custom_hooks"] = [*custom, *(dict(type=h) for h in missing)]
    return cfg


def _init_cpu_distributed(cfg: MutableMapping) -> None:
    # mmengine's init_dist calls torch.cuda.set_device; on a CPU machine start the group here
    # (mmengine uses an existing one).
    import torch.distributed as dist

    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return
    if dist.is_available() and not dist.is_initialized():
        dist_cfg = dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {})
        dist.init_process_group(backend=dist_cfg.pop("backend", "gloo"), **dist_cfg)


@RUNNERS.register_module()
class LUTRunner(Runner):
    """mmengine's ``Runner`` with the guarantees of docs/reliability.md.

    ``tools/train.py``/``tools/test.py`` build it for every config (``runner_type='LUTRunner'``
    for upstream launchers). It adapts the config (:func:`adapt_config`); loads checkpoints
    weights only (``unsafe_load=True`` opts out) and strictly, without evaluating the config
    text they may carry; warns when a resumed run changes its length; names a missing
    dataset path with the option that sets it; and, for mmengine's ``compile`` config key,
    gives the optimiser plain-dict parameter groups that Dynamo can trace.
    """

    @classmethod
    def from_cfg(cls, cfg) -> LUTRunner:
        """Build the runner from a config adapted by :func:`adapt_config`."""
        cfg = adapt_config(copy.deepcopy(cfg))
        randomness = cfg.get("randomness") or {}
        if cfg.get("resume") and randomness.get("seed") is None:
            # mmengine restores the resumed run's seed only after building the dataloaders,
            # so their sample order would follow another seed: read it first.
            path = cfg.get("load_from") or find_latest_checkpoint(cfg["work_dir"])
            if path:
                unsafe = bool(cfg.get("unsafe_load", False))
                meta = load_checkpoint_file(path, unsafe=unsafe, mmap=True).get("meta") or {}
                cfg["randomness"] = {**randomness, "seed": meta.get("seed")}
        _init_cpu_distributed(cfg)
        return super().from_cfg(cfg)

    def _policy(self):
        return checkpoint_policy(unsafe=bool(self.cfg.get("unsafe_load", False)))

    def train(self) -> torch.nn.Module:
        """Train, under the config's checkpoint policy."""
        with self._policy():
            return super().train()

    def val(self) -> dict:
        """Validate, under the config's checkpoint policy."""
        with self._policy():
            return super().val()

    def test(self) -> dict:
        """Test, under the config's checkpoint policy."""
        with self._policy():
            return super().test()

    def build_dataloader(self, dataloader: Any, seed=None, diff_rank_seed: bool = False) -> Any:
        """mmengine's ``build_dataloader``; the dataset is wrapped for :class:`LUTSeededSampler`
        (else in :class:`NamedSampleDataset`, whose loading errors name the file).

        A dataset whose files are missing fails with the path and the option that sets it.
        """
        if not isinstance(dataloader, MutableMapping):
            return Runner.build_dataloader(dataloader, seed, diff_rank_seed)
        cfg = copy.deepcopy(dataloader)
        if isinstance(cfg.get("dataset"), MutableMapping):
            try:
                cfg["dataset"] = DATASETS.build(cfg["dataset"])
                if hasattr(cfg["dataset"], "full_init"):
                    cfg["dataset"].full_init()
            except FileNotFoundError as exc:
                key = self._loader_key(dataloader)
                page = "segmentation" if self.cfg.get("default_scope") == "mmseg" else "data"
                raise FileNotFoundError(
                    f"{_name(dataloader['dataset'].get('type'))} dataset not found: {exc}. Point "
                    f"its data_root at your copy, e.g. --cfg-options "
                    f"{key}.dataset.data_root=/path/to/dataset (the expected folder layout is "
                    f"in docs/{page}.md)."
                ) from exc
        dataset, batch, sampler = cfg.get("dataset"), cfg.get("batch_size"), cfg.get("sampler")
        finite = "InfiniteSampler" not in str(sampler)  # an infinite one fills batches anyway
        if (
            cfg.get("drop_last")
            and finite
            and isinstance(batch, int)
            and hasattr(dataset, "__len__")
        ):
            per_rank = len(dataset) // get_world_size()
            if per_rank < batch:
                raise ValueError(
                    f"{self._loader_key(dataloader)} gives no batch: {len(dataset)} samples "
                    f"({per_rank} per process) and batch_size {batch} with drop_last=True. "
                    f"Lower batch_size or give it more samples."
                )
        if _name((sampler or {}).get("type")) == LUTSeededSampler.__name__:
            cfg["dataset"] = SeededDataset(dataset)
        elif isinstance(dataset, Dataset):
            cfg["dataset"] = NamedSampleDataset(dataset)
        return Runner.build_dataloader(cfg, seed, diff_rank_seed)

    def _loader_key(self, dataloader: Any) -> str:
        """The config key of a dataloader config of this runner."""
        key = next((k for k in _LOADERS if getattr(self, f"_{k}", None) is dataloader), None)
        return key or "train_dataloader"

    def build_model(self, model: Any) -> torch.nn.Module:
        """mmengine's ``build_model``; numpy drop-path rates become Python floats.

        mmpretrain's ViTs give ``DropPath`` numpy rates, on which Dynamo branches: with
        mmengine's ``compile`` key every block would split into several graphs (and be
        recompiled for the teacher's no-grad passes). The arithmetic is unchanged.
        """
        built = super().build_model(model)
        python_drop_rates(built)
        return built

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        """mmengine's ``build_optim_wrapper``; parameter groups as plain dicts when compiling.

        mmengine's optimiser constructor leaves them as ``ConfigDict``s, which Dynamo cannot
        trace: with mmengine's ``compile`` config key (the whole ``train_step``) it would stop
        in the optimiser step.
        """
        built = super().build_optim_wrapper(optim_wrapper)
        if not self.cfg.get("compile"):
            return built
        for wrapper in built.values() if isinstance(built, OptimWrapperDict) else [built]:
            groups = wrapper.optimizer.param_groups
            groups[:] = [dict(group) for group in groups]
        return built

    def load_checkpoint(
        self,
        filename: str,
        map_location: Any = "cpu",
        strict: bool = True,
        revise_keys: list = [(r"^module\.", "")],  # noqa: B006 (mmengine's signature)
    ) -> dict:
        """Load a checkpoint into the model: weights only, strictly, naming the file in errors."""
        checkpoint = load_checkpoint_file(filename, map_location)
        if self._resuming:
            self._check_resumable(filename, checkpoint)
        # mmengine's resume would run this text as Python (Config.fromstring); never needed.
        if isinstance(checkpoint.get("meta"), dict):
            checkpoint["meta"].pop("config", None)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        try:
            _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=revise_keys)
        except RuntimeError as exc:
            raise CheckpointMismatchError(
                f"checkpoint {filename} does not match the model:\n{exc}"
            ) from exc
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint

    _resuming = False

    def _check_resumable(self, filename: str, checkpoint: dict) -> None:
        """Refuse a file that cannot continue a run exactly (weights alone, an export...)."""
        meta = checkpoint.get("meta")
        missing = [k for k in ("state_dict", "message_hub", "optimizer") if k not in checkpoint]
        if not isinstance(meta, dict) or not {"epoch", "iter"} <= set(meta):
            missing.insert(0, "meta (epoch, iter)")
        if self.param_schedulers and "param_schedulers" not in checkpoint:
            missing.append("param_schedulers")
        if missing:
            raise CheckpointError(
                f"Cannot resume from {filename}: it is not a training checkpoint of this kind "
                f"of run (no {', '.join(missing)}). To start a new run from its weights, use "
                f"load_from (--cfg-options load_from={filename}) without --resume."
            )

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's ``resume`` of a complete training checkpoint (refused otherwise, naming
        what is missing); warns when the run length differs from the checkpoint's run."""
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False
        for key in ("max_iters", "max_epochs"):
            before, now = self.message_hub.get_info(key), getattr(self, key)
            if before is not None and before != now:
                self.logger.warning(
                    f"Resuming {filename}, written by a run of {key}={before}, with {key}={now}: "
                    f"schedules over the whole run (the teacher's momentum, learning rates by "
                    f"iteration) continue from a different point."
                )
