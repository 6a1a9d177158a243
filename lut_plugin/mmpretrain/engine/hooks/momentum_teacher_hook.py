"""Updates LUT's momentum teacher after every optimiser step."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class MomentumTeacherHook(Hook):
    """Call ``model.update_teacher(iter, max_iters)`` after each optimiser step.

    Runs before the checkpoint hook so that saved checkpoints hold the teacher
    of the iteration they are named after. Iterations that only accumulate
    gradients (``accumulative_counts > 1``) leave the teacher unchanged.
    """

    priority = "ABOVE_NORMAL"

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Average the teacher towards the freshly updated student."""
        optim_wrapper = runner.optim_wrapper
        should_update = getattr(optim_wrapper, "should_update", None)
        if callable(should_update) and not should_update():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        momentum = model.update_teacher(runner.iter, runner.max_iters)
        runner.message_hub.update_scalar("train/teacher_momentum", momentum)
