"""The LUT authors' learning-rate rule: scale with the square root of the batch size."""

from __future__ import annotations

import math

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS


def lr_scale(batch_size: int, base_batch_size: int, rule: str = "linear") -> float:
    """Factor taking an lr set for ``base_batch_size`` to ``batch_size``: ``batch / base``
    (``'linear'``, MAE's and mmengine's ``auto_scale_lr``) or its square root (``'sqrt'``).

    Args:
        batch_size (int): The batch size of the run.
        base_batch_size (int): The batch size the configured lr is meant for.
        rule (str): ``'linear'`` or ``'sqrt'``. Defaults to ``'linear'``.
    """
    if rule not in ("linear", "sqrt"):
        raise ValueError(f"rule must be 'linear' or 'sqrt', got {rule!r}")
    if batch_size <= 0 or base_batch_size <= 0:
        raise ValueError(f"batch sizes must be positive, got {batch_size} / {base_batch_size}")
    ratio = batch_size / base_batch_size
    return math.sqrt(ratio) if rule == "sqrt" else ratio


@HOOKS.register_module()
class SqrtLRScalingHook(Hook):
    """Make ``auto_scale_lr`` (``--auto-scale-lr``) follow the square-root rule of the authors'
    code: before the run (and a resumed state) it rescales mmengine's linear factor ``real /
    base`` (GPUs x ``batch_size``; accumulation not counted) to ``sqrt(real / base)`` in the
    optimiser and the lr schedules. Without ``auto_scale_lr.enable`` it does nothing."""

    priority = "VERY_HIGH"

    def before_run(self, runner) -> None:
        cfg = runner.auto_scale_lr
        if not cfg or not cfg.get("enable", False):
            return
        real, base = runner.world_size * runner.train_dataloader.batch_size, cfg["base_batch_size"]
        linear = lr_scale(real, base, "linear")
        factor = lr_scale(real, base, "sqrt") / linear
        wrappers = runner.optim_wrapper
        for wrapper in wrappers.values() if isinstance(wrappers, OptimWrapperDict) else [wrappers]:
            for group in wrapper.optimizer.param_groups:
                group.update({k: group[k] * factor for k in ("lr", "initial_lr") if k in group})
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        for scheduler in (s for s in schedulers if getattr(s, "param_name", None) == "lr"):
            # the optimiser's groups only: an OptimWrapper's schedulers also step its
            # base_param_settings (logged as base_lr), which auto_scale_lr leaves unscaled
            n = len(getattr(scheduler.optimizer, "optimizer", scheduler.optimizer).param_groups)
            for name in ("base_values", "_last_value"):
                if (values := getattr(scheduler, name, None)) is not None:
                    setattr(scheduler, name, [v * factor for v in values[:n]] + values[n:])
        runner.logger.info(f"SqrtLRScalingHook: lr scaled by sqrt({real}/{base}) = "
                           f"{linear * factor:.4g} instead of the linear {linear:.4g}")  # fmt: skip
