"""Random draws as a function of the seed and the position in the run (exact resume), in
whichever process draws: :class:`SeededSampler` keys each sample, :class:`StepSeedHook` each step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import DATA_SAMPLERS, HOOKS
from torch.utils.data import Dataset, Sampler

SAMPLE_STREAM, STEP_STREAM = 0, 1


def seed_everything(*key: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU, GPUs) from ``key``
    (through ``numpy.random.SeedSequence`` of the key and its length: unrelated streams).

    Args:
        *key (int): Non-negative integers, e.g. ``(seed, stream, iteration)``.
    """
    words = np.random.SeedSequence([len(key), *(int(k) & 0xFFFFFFFF for k in key)])
    words = words.generate_state(4)
    random.seed(int(words[0]) << 32 | int(words[1]))
    np.random.seed(words)
    torch.manual_seed(int(words[2]) << 31 | int(words[3]) >> 1)


class NamedSampleDataset(Dataset):
    """A dataset whose loading errors name the sample's file (OpenCV's name none), and that
    seeds every generator from the key of an ``(index, key)`` of :class:`SeededSampler` before
    loading ``index``. Other attributes are the wrapped dataset's.

    Args:
        dataset (Dataset): The dataset.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int | tuple[int, tuple[int, ...]]) -> Any:
        if isinstance(index, tuple):
            index, key = index
            seed_everything(*key)
        try:
            return self.dataset[index]
        except Exception as exc:
            try:
                path = self.dataset.get_data_info(index).get("img_path")
            except Exception:
                path = None
            if path is None or str(path) in str(exc):
                raise
            raise RuntimeError(
                f"Cannot load sample {index} ({path}): {type(exc).__name__}: {exc}"
            ) from exc

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling in a worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)


@DATA_SAMPLERS.register_module()
class SeededSampler(Sampler):
    """The wrapped sampler's indices, each with the key ``(seed, epoch, rank, position)`` that
    seeds its augmentations wherever it is loaded (by :class:`NamedSampleDataset`).

    Args:
        dataset (Dataset): The dataset.
        sampler (dict): Config of the sampler that orders the indices.
        seed (int, optional): Passed to that sampler (mmengine's runner sets it).
    """

    def __init__(self, dataset: Dataset, sampler: dict, seed: int | None = None) -> None:
        self.sampler = DATA_SAMPLERS.build(sampler, default_args=dict(dataset=dataset, seed=seed))
        self.seed = int(getattr(self.sampler, "seed", seed or 0))
        self.epoch, self.rank = 0, get_rank()

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        for position, index in enumerate(self.sampler):
            yield index, (self.seed, SAMPLE_STREAM, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


@HOOKS.register_module()
class StepSeedHook(Hook):
    """Seed the main process's generators from ``(seed, iteration)`` before each training step
    (masks, drop path): what ran in between (validation, a new loader) does not matter."""

    priority = "VERY_HIGH"

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        seed_everything(runner.seed, STEP_STREAM, runner.iter)
