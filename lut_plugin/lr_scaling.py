"""The LUT authors' learning-rate rule: scale with the square root of the batch size."""

from __future__ import annotations

import math

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS
from torch.utils.data import DataLoader


def lr_scale(batch_size: int, base_batch_size: int, rule: str = "linear") -> float:
    """Factor that takes a learning rate set for ``base_batch_size`` to ``batch_size``.

    ``'linear'`` is MAE's ``blr * batch / 256`` (mmengine's ``auto_scale_lr``); ``'sqrt'``
    is the LUT authors' ``blr * sqrt(batch) / 4``. Both give 2.4e-3 at 4096 images for
    ``blr = 1.5e-4``; at 2048 images linear gives 1.2e-3 and sqrt 1.697e-3.

    Args:
        batch_size (int): The batch size of the run.
        base_batch_size (int): The batch size the configured lr is meant for.
        rule (str): ``'linear'`` or ``'sqrt'``. Defaults to ``'linear'``.

    Returns:
        float: ``batch / base`` or ``sqrt(batch / base)``.
    """
    if rule not in ("linear", "sqrt"):
        raise ValueError(f"rule must be 'linear' or 'sqrt', got {rule!r}")
    if batch_size <= 0 or base_batch_size <= 0:
        raise ValueError(f"batch sizes must be positive, got {batch_size} / {base_batch_size}")
    ratio = batch_size / base_batch_size
    return math.sqrt(ratio) if rule == "sqrt" else ratio


@HOOKS.register_module()
class SqrtLRScalingHook(Hook):
    """Make ``auto_scale_lr`` (``--auto-scale-lr``) follow the square-root rule.

    mmengine's ``auto_scale_lr`` multiplies the configured lr by ``r = real / base``, with
    ``real`` = GPUs x ``train_dataloader.batch_size`` (gradient accumulation not counted,
    so configs that accumulate set ``base_batch_size`` to their batch / accumulation). With
    this hook in ``custom_hooks`` the factor becomes ``sqrt(r)``, the rule of the authors'
    code. Before the run starts (before a resumed state is loaded), it rescales the
    optimiser's lr and the lr schedules built from it. Without ``auto_scale_lr.enable`` it
    does nothing, as mmengine.
    """

    priority = "VERY_HIGH"

    def before_run(self, runner) -> None:
        cfg = runner.auto_scale_lr
        if not cfg or not cfg.get("enable", False):
            return
        loader = runner.train_dataloader
        batch = loader.batch_size if isinstance(loader, DataLoader) else loader["batch_size"]
        real = runner.world_size * batch
        linear = lr_scale(real, cfg["base_batch_size"], "linear")
        factor = lr_scale(real, cfg["base_batch_size"], "sqrt") / linear
        wrappers = runner.optim_wrapper
        wrappers = wrappers.values() if isinstance(wrappers, OptimWrapperDict) else [wrappers]
        for wrapper in wrappers:
            for group in wrapper.optimizer.param_groups:
                for key in ("lr", "initial_lr"):
                    if key in group:
                        group[key] *= factor
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        for scheduler in schedulers:
            if getattr(scheduler, "param_name", None) != "lr":
                continue
            # The optimiser's groups only: an OptimWrapper's schedulers also step its
            # base_param_settings (logged as base_lr), which auto_scale_lr leaves unscaled.
            n = len(getattr(scheduler.optimizer, "optimizer", scheduler.optimizer).param_groups)
            for name in ("base_values", "_last_value"):
                values = getattr(scheduler, name, None)
                if values is not None:
                    setattr(scheduler, name, [v * factor for v in values[:n]] + values[n:])
        runner.logger.info(
            f"SqrtLRScalingHook: lr scaled by sqrt({real}/{cfg['base_batch_size']}) = "
            f"{linear * factor:.4g} instead of the linear {linear:.4g}"
        )
