"""Seeds the main process's generators from the iteration before every training step."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..seeded_sampler import STEP_STREAM, seed_everything


@HOOKS.register_module()
class LUTStepSeedHook(Hook):
    """Make the random draws of training step ``i`` (masks, drop path) a function of ``(seed, i)``.

    mmengine checkpoints hold no generator state, and anything run between two steps (a
    validation loop, a new dataloader iterator) consumes random numbers; seeding before each
    step makes a resumed run draw what an uninterrupted one draws. The data side is
    :class:`~lut_plugin.mmpretrain.engine.LUTSeededSampler`. ``LUTRunner`` adds this hook.
    ``runner.seed`` includes the rank when the config asks for ``diff_rank_seed``.
    """

    priority = "VERY_HIGH"

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Seed python, numpy and torch (CPU and GPUs) from ``(runner.seed, runner.iter)``."""
        seed_everything(runner.seed, STEP_STREAM, runner.iter)
