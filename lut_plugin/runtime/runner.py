"""``SafeResumeRunner``: mmengine's Runner with checkpoints people can trust and exact resume."""

from __future__ import annotations

import copy
from collections.abc import MutableMapping
from typing import Any

import torch
from mmengine.dist import get_world_size
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.registry import DATASETS, RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model, find_latest_checkpoint
from torch.utils.data import Dataset

from . import compat
from .loading import CheckpointError, CheckpointMismatchError, checkpoint_policy
from .loading import load_checkpoint_file as load
from .seeding import NamedSampleDataset

_LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


def type_name(type_: Any) -> str:
    """A config's ``type`` (``'mmpretrain.X'``, ``'X'`` or a class) as its bare class name."""
    return (type_ if isinstance(type_, str) else getattr(type_, "__name__", "")).split(".")[-1]


@RUNNERS.register_module()
class SafeResumeRunner(Runner):
    """mmengine's ``Runner`` with the guarantees of docs/reliability.md (a config opts in with
    ``configs/_base_/reliability_runtime.py``); it logs the hooks and sampler it sets up."""

    @classmethod
    def from_cfg(cls, cfg) -> SafeResumeRunner:
        cfg = copy.deepcopy(cfg)
        for key in ("max_epochs", "max_iters"):
            value = (cfg.get("train_cfg") or {}).get(key)
            if value is not None and not (isinstance(value, int) and value > 0):
                raise ValueError(f"train_cfg.{key} must be a positive integer, got {value!r}: "
                                 "nothing would train")  # fmt: skip
        for key in _LOADERS:
            if isinstance(cfg.get(key), MutableMapping):
                compat.strip_collate_scope(cfg[key])
        notes = []
        hooks = cfg.get("default_hooks") or {}
        ckpt = hooks.get("checkpoint", dict(type="CheckpointHook"))  # mmengine's default
        if isinstance(ckpt, MutableMapping) and type_name(ckpt.get("type")) == "CheckpointHook":
            cfg["default_hooks"] = {**hooks, "checkpoint": {**ckpt, "type": "AtomicCheckpointHook"}}
            notes.append("checkpoints by AtomicCheckpointHook")
        train = cfg.get("train_dataloader")
        sampler = train.get("sampler") if isinstance(train, MutableMapping) else None
        wrap = isinstance(sampler, MutableMapping) and "batch_sampler" not in train
        if wrap and type_name(sampler.get("type")) != "SeededSampler":
            train["sampler"] = dict(type="SeededSampler", sampler=sampler)
            notes.append("training samples seeded by position (SeededSampler around "
                         f"{type_name(sampler['type'])})")  # fmt: skip
        if train is not None:
            custom = list(cfg.get("custom_hooks") or [])
            present = {type_name(h.get("type") if isinstance(h, MutableMapping) else type(h))
                       for h in custom}  # fmt: skip
            added = [h for h in ("StepSeedHook", "FiniteCheckHook") if h not in present]
            cfg["custom_hooks"] = [*custom, *(dict(type=h) for h in added)]
            notes += [f"{h} added" for h in added]
        randomness = cfg.get("randomness") or {}
        if cfg.get("resume") and randomness.get("seed") is None:
            # mmengine restores a resumed run's seed only after building the dataloaders, whose
            # sample order would then follow another seed: read it first.
            if path := cfg.get("load_from") or find_latest_checkpoint(cfg["work_dir"]):
                unsafe = bool(cfg.get("unsafe_load", False))
                meta = load(path, unsafe=unsafe, mmap=True).get("meta") or {}
                cfg["randomness"] = {**randomness, "seed": meta.get("seed")}
        runner = super().from_cfg(cfg)
        if notes:
            runner.logger.info(f"{cls.__name__}: {'; '.join(notes)}.")
        return runner

    def train(self) -> torch.nn.Module:
        with checkpoint_policy(unsafe=bool(self.cfg.get("unsafe_load", False))):
            return super().train()

    def val(self) -> dict:
        with checkpoint_policy(unsafe=bool(self.cfg.get("unsafe_load", False))):
            return super().val()

    def test(self) -> dict:
        with checkpoint_policy(unsafe=bool(self.cfg.get("unsafe_load", False))):
            return super().test()

    def build_dataloader(self, dataloader: Any, seed=None, diff_rank_seed: bool = False) -> Any:
        """mmengine's, with datasets wrapped to name files in errors (and read seed keys); a
        missing dataset, or one ``drop_last`` leaves without a batch, names its option."""
        if not isinstance(dataloader, MutableMapping):
            return Runner.build_dataloader(dataloader, seed, diff_rank_seed)
        key = next((k for k in _LOADERS if getattr(self, f"_{k}", None) is dataloader), None)
        key, cfg = key or "train_dataloader", copy.deepcopy(dataloader)
        if isinstance(cfg.get("dataset"), MutableMapping):
            try:
                cfg["dataset"] = DATASETS.build(cfg["dataset"])
                if hasattr(cfg["dataset"], "full_init"):
                    cfg["dataset"].full_init()
            except FileNotFoundError as exc:
                page = "segmentation" if self.cfg.get("default_scope") == "mmseg" else "data"
                raise FileNotFoundError(
                    f"{type_name(dataloader['dataset'].get('type'))} dataset not found: {exc}. "
                    f"Point its data_root at your copy, e.g. --cfg-options {key}.dataset.data_root="
                    f"/path/to/dataset (the expected folder layout is in docs/{page}.md)."
                ) from exc
        dataset, batch, sampler = cfg.get("dataset"), cfg.get("batch_size"), cfg.get("sampler")
        finite = cfg.get("drop_last") and "InfiniteSampler" not in str(sampler)
        if finite and isinstance(batch, int) and hasattr(dataset, "__len__"):
            if (per_rank := len(dataset) // get_world_size()) < batch:
                raise ValueError(
                    f"{key} gives no batch: {len(dataset)} samples ({per_rank} per process) and "
                    f"batch_size {batch} with drop_last=True. Lower batch_size or give it more "
                    "samples."
                )
        seeded = type_name((sampler or {}).get("type")) == "SeededSampler"
        if isinstance(dataset, Dataset) or seeded:
            cfg["dataset"] = NamedSampleDataset(dataset)
        return Runner.build_dataloader(cfg, seed, diff_rank_seed)

    def build_model(self, model: Any) -> torch.nn.Module:
        built = super().build_model(model)
        compat.python_drop_rates(built)
        return built

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        built = super().build_optim_wrapper(optim_wrapper)
        if self.cfg.get("compile"):  # ConfigDict groups: Dynamo fails in the optimiser step
            for wrapper in built.values() if isinstance(built, OptimWrapperDict) else [built]:
                groups = wrapper.optimizer.param_groups
                groups[:] = [dict(group) for group in groups]
        return built

    _resuming = False

    def load_checkpoint(
        self,
        filename: str,
        map_location: Any = "cpu",
        strict: bool = True,
        revise_keys: list = [(r"^module\.", "")],  # noqa: B006 (mmengine's signature)
    ) -> dict:
        """Load a checkpoint into the model: weights only, strictly, naming the file in errors."""
        checkpoint = load(filename, map_location)
        meta = checkpoint.get("meta")
        if self._resuming:  # refuse what cannot continue a run exactly (weights alone, exports)
            missing = [k for k in ("state_dict", "message_hub", "optimizer") if k not in checkpoint]
            if not isinstance(meta, dict) or not {"epoch", "iter"} <= set(meta):
                missing.insert(0, "meta (epoch, iter)")
            if self.param_schedulers and "param_schedulers" not in checkpoint:
                missing.append("param_schedulers")
            if missing:
                raise CheckpointError(
                    f"Cannot resume from {filename}: it is not a training checkpoint of this "
                    f"kind of run (no {', '.join(missing)}). To start a new run from its weights, "
                    f"use load_from (--cfg-options load_from={filename}) without --resume."
                )
        if isinstance(meta, dict):  # mmengine's resume would run this text as Python
            meta.pop("config", None)
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

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's ``resume``; warns when the run length differs from the checkpoint's."""
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
