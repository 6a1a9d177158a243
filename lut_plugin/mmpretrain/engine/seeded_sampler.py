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


class NamedSampleDataset(Dataset):
    """A dataset whose loading errors name the sample's file.

    OpenCV's error for an empty image file, for one, names no file. ``LUTRunner`` wraps the
    datasets of its dataloaders in it; other attributes (``metainfo``, ...) are the wrapped
    dataset's.

    Args:
        dataset (Dataset): The dataset.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
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
