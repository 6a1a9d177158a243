"""Reseed the random number generators from the iteration so that resuming is exact."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

# Streams: the data pipeline before fetching a batch, and the model step.
_DATA_STREAM = 0
_MODEL_STREAM = 1


def reseed_all(base_seed: int, stream: int, index: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and all GPUs).

    The seed is derived from ``(base_seed, stream, index)`` with
    ``numpy.random.SeedSequence``, so neighbouring iterations get unrelated streams.

    Args:
        base_seed (int): The run's seed (``runner.seed``, per rank where the config
            asks for ``diff_rank_seed``).
        stream (int): Which stream (data or model).
        index (int): The iteration the stream is for.
    """
    words = np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, stream, index]).generate_state(4)
    random.seed(int(words[0]) << 32 | int(words[1]))
    np.random.seed(words)
    torch.manual_seed(int(words[2]) << 31 | int(words[3]) >> 1)


class _ReseedingIterator:
    """Wraps the infinite dataloader iterator of ``IterBasedTrainLoop``.

    Reseeds before each batch is fetched, so that the batch of iteration ``i`` sees the
    same RNG whether the run started at 0 or was resumed and skipped ``i`` batches.
    """

    def __init__(self, iterator: Iterator, base_seed: int) -> None:
        self.iterator = iterator
        self.base_seed = base_seed
        self.count = 0

    def __iter__(self) -> _ReseedingIterator:
        return self

    def __next__(self) -> Any:
        reseed_all(self.base_seed, _DATA_STREAM, self.count)
        self.count += 1
        return next(self.iterator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.iterator, name)


@HOOKS.register_module()
class ResumableRNGHook(Hook):
    """Make a resumed run draw the same random numbers as an uninterrupted one.

    mmengine checkpoints keep no RNG state, and resuming seeds the generators
    afresh, so random masks and augmentations after a resume differ from those of an
    uninterrupted run. This hook makes every draw a function of the run's seed and
    the iteration instead of the history:

    - before each batch is fetched, the generators are seeded from
      ``(seed, 'data', iteration)`` (``EpochBasedTrainLoop``: at the start of each
      epoch and after each iteration; ``IterBasedTrainLoop``: by wrapping its
      dataloader iterator, which also covers the batches skipped on resume);
    - before each training step, from ``(seed, 'model', iteration)``.

    ``tools/train.py`` adds it to every run (``--no-resumable-rng`` turns it off).
    Random draws inside dataloader worker processes are seeded by mmengine's
    ``worker_init_fn`` and are not touched; with ``persistent_workers=True`` an
    epoch-based resume therefore still changes the augmentations of the workers.

    Args:
        seed (int, optional): Base seed. Defaults to ``runner.seed``, i.e. the
            ``randomness.seed`` of the config (plus the rank if ``diff_rank_seed``),
            which mmengine also stores in and restores from checkpoints.
    """

    priority = "VERY_HIGH"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _base_seed(self, runner: Any) -> int:
        return int(self.seed if self.seed is not None else runner.seed)

    def before_train_epoch(self, runner: Any) -> None:
        """Reseed the data stream, or wrap the iterator of an iteration-based loop.

        Args:
            runner (Runner): The runner.
        """
        loop = runner.train_loop
        if hasattr(loop, "dataloader_iterator"):
            if not isinstance(loop.dataloader_iterator, _ReseedingIterator):
                loop.dataloader_iterator = _ReseedingIterator(
                    loop.dataloader_iterator, self._base_seed(runner)
                )
        else:
            reseed_all(self._base_seed(runner), _DATA_STREAM, runner.iter)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Reseed the model stream from the iteration.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (Any): The batch.
        """
        reseed_all(self._base_seed(runner), _MODEL_STREAM, runner.iter)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Reseed the data stream for the next batch of an epoch-based loop.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (Any): The batch.
            outputs (Any): The step's outputs.
        """
        if not hasattr(runner.train_loop, "dataloader_iterator"):
            reseed_all(self._base_seed(runner), _DATA_STREAM, runner.iter + 1)
