"""Random draws as a function of the seed and the position in the run, not of the history.

Then a resumed run draws exactly what an uninterrupted one would have drawn, whatever process
(main or dataloader worker, persistent or not) does the drawing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Dataset, Sampler

from lut_plugin.mmpretrain.datasets import NamedSampleDataset


def seed_everything(*key: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU, all GPUs) from ``key``.

    The seeds come from ``numpy.random.SeedSequence`` of the key (and its length: numpy treats
    trailing zeros as absent), so different keys give unrelated streams.

    Args:
        *key (int): Non-negative integers, e.g. ``(seed, stream, iteration)``.
    """
    words = np.random.SeedSequence([len(key), *(int(k) & 0xFFFFFFFF for k in key)])
    words = words.generate_state(4)
    random.seed(int(words[0]) << 32 | int(words[1]))
    np.random.seed(words)
    torch.manual_seed(int(words[2]) << 31 | int(words[3]) >> 1)


SAMPLE_STREAM, STEP_STREAM = 0, 1


class SeededDataset(NamedSampleDataset):
    """Reads ``(index, seed key)`` pairs: seeds every generator from the key, then loads ``index``.

    ``LUTRunner`` wraps the training dataset in it when the sampler is :class:`LUTSeededSampler`.

    Args:
        dataset (Dataset): The dataset.
    """

    def __getitem__(self, key: tuple[int, tuple[int, ...]]) -> Any:
        index, seed_key = key
        seed_everything(*seed_key)
        return super().__getitem__(index)


@DATA_SAMPLERS.register_module()
class LUTSeededSampler(Sampler):
    """Any sampler's indices, each paired with a seed key ``(seed, epoch, rank, position)``.

    The wrapped sampler keeps choosing the order (``DefaultSampler``, ``InfiniteSampler``, ...);
    the key of the sample at ``position`` of ``epoch`` seeds its augmentations (see
    :class:`SeededDataset`), wherever and whenever it is loaded. ``seed`` is the wrapped
    sampler's (the same on every rank); the rank is part of the key, so ranks draw differently.

    Args:
        dataset (Dataset): The (wrapped) dataset.
        sampler (dict): Config of the sampler that orders the indices.
        seed (int, optional): Passed to that sampler (mmengine's runner sets it).
    """

    def __init__(self, dataset: Dataset, sampler: dict, seed: int | None = None) -> None:
        self.sampler = DATA_SAMPLERS.build(sampler, default_args=dict(dataset=dataset, seed=seed))
        self.seed = int(getattr(self.sampler, "seed", seed or 0))
        self.epoch = 0
        self.rank = get_rank()

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        for position, index in enumerate(self.sampler):
            yield index, (self.seed, SAMPLE_STREAM, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of this sampler and of the wrapped one."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
