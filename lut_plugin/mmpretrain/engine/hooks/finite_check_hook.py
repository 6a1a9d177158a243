"""Stops training at a non-finite loss or weight without a host sync per iteration."""

from __future__ import annotations

import math

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .runtime_info_hook import logger_interval


@HOOKS.register_module()
class LUTFiniteCheckHook(Hook):
    """Stop training when a loss or a weight becomes NaN or infinite.

    After each iteration the hook records, on the device and without waiting
    for it, the first iteration at which each loss term of the model's outputs
    (the keys containing ``'loss'``, as ``BaseModel.parse_losses`` sums them)
    was non-finite and, after each optimiser step, the first at which a
    floating-point parameter or buffer was (a non-finite gradient that reached
    the weights, whatever the loss). The record is read, and a
    ``FloatingPointError`` naming the terms, tensors and iterations raised,
    only where that is cheap or rare: every ``interval`` iterations, before
    every checkpoint is saved (so no checkpoint holds bad values and no older
    one is deleted for it) and at the end of training.

    Non-finite gradients that fp16 loss scaling skips are not an error: the
    step is skipped and the weights stay finite.

    Args:
        interval (int, optional): Iterations between reads. Defaults to every
            iteration for a model on the CPU (reading costs nothing there) and
            to the ``LoggerHook`` interval otherwise.
    """

    priority = "HIGH"  # after_train_iter before the logger and checkpoint hooks

    def __init__(self, interval: int | None = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self._tensors: dict[str, torch.Tensor] = {}
        self._first_bad: dict[str, torch.Tensor] = {}  # name -> iteration, -1 while finite
        self._first_value: dict[str, torch.Tensor] = {}

    def before_train(self, runner) -> None:
        """Collect the model's floating-point tensors; choose the interval."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._tensors = {
            name: t
            for name, t in model.state_dict(keep_vars=True).items()
            if t.is_floating_point() and t.numel() > 0
        }
        if self.interval is None:
            on_cpu = all(t.device.type == "cpu" for t in self._tensors.values())
            self.interval = 1 if on_cpu else logger_interval(runner)

    def _record(self, name: str, bad: torch.Tensor, cur_iter: int, value=None) -> None:
        """Keep the first iteration (and value) at which ``bad`` was true; no sync."""
        if name not in self._first_bad:
            self._first_bad[name] = torch.full((), -1, dtype=torch.long, device=bad.device)
        new = bad & (self._first_bad[name] < 0)
        self._first_bad[name] = torch.where(new, cur_iter, self._first_bad[name])
        if value is not None:
            self._first_value[name] = torch.where(new, value, self._first_value.get(name, value))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Record this iteration (device only); read every ``interval`` iterations."""
        for key, value in (outputs or {}).items():
            if "loss" in key and isinstance(value, torch.Tensor):
                value = value.detach().float().mean()
                self._record(key, ~torch.isfinite(value), runner.iter, value)
        should_update = getattr(runner.optim_wrapper, "should_update", None)
        if self._tensors and (not callable(should_update) or should_update()):
            tensors = list(self._tensors.values())
            # inf-norm: non-finite iff an element is, and it cannot overflow.
            norms = torch.stack(torch._foreach_norm(tensors, math.inf, dtype=torch.float32))
            self._record("weights", ~torch.isfinite(norms).all(), runner.iter)
        if self.every_n_train_iters(runner, self.interval):
            self._raise_if_not_finite()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to save a checkpoint after a non-finite loss or weight."""
        self._raise_if_not_finite()

    def after_train(self, runner) -> None:
        """Read once more at the end of training."""
        self._raise_if_not_finite()

    def _raise_if_not_finite(self) -> None:
        if not self._first_bad:
            return
        names = list(self._first_bad)
        firsts = torch.stack([self._first_bad[n] for n in names]).tolist()  # the one sync
        bad = dict(sorted(((n, it) for n, it in zip(names, firsts) if it >= 0), key=lambda x: x[1]))
        if any(n not in ("loss", "weights") for n in bad):
            bad.pop("loss", None)  # the sum of the terms that are named
        if not bad:
            return
        parts = []
        for name, it in bad.items():
            if name != "weights":
                value = self._first_value[name].item()
                parts.append(f"non-finite loss at iteration {it}: {name}={value}")
                continue
            tensors = [n for n, t in self._tensors.items() if not torch.isfinite(t).all()]
            more = f" and {len(tensors) - 5} more" if len(tensors) > 5 else ""
            parts.append(
                f"non-finite weights after the optimiser step of iteration {it}: "
                f"{', '.join(tensors[:5])}{more} (a non-finite gradient reached them)"
            )
        raise FloatingPointError(
            "; ".join(parts) + ". Training stopped; checkpoints saved before are untouched "
            "and none was saved with these values"
        )
