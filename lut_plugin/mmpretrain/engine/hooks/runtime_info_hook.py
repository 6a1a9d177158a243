"""mmengine's ``RuntimeInfoHook`` reading the logged losses once per logging interval."""

from __future__ import annotations

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmengine.registry import HOOKS
from mmengine.utils import apply_to


def logger_interval(runner) -> int:
    """The interval of the runner's ``LoggerHook``; 1 without one."""
    loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
    return loggers[0].interval if loggers else 1


@HOOKS.register_module()
class LUTRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` without a host synchronisation every iteration.

    mmengine's hook turns every logged loss of every iteration into a Python float, which
    makes the host wait for the GPU to finish the step before it may queue the next one.
    This hook keeps the iterations' loss tensors and hands them to the message hub, in
    order and with the same values, in one read when they are needed: at the iterations
    the ``LoggerHook`` logs, at the end of each epoch, before validation and before a
    checkpoint is saved. The logs are the same as with ``RuntimeInfoHook``; between those
    points a hook that reads ``train/<loss>`` from the message hub sees the value of the
    last flush.

    Use it in place of the default: ``default_hooks = dict(runtime_info=dict(
    type='LUTRuntimeInfoHook'))``.

    Args:
        interval (int, optional): Iterations between reads. Defaults to the
            ``LoggerHook`` interval (1 without a ``LoggerHook``).
    """

    def __init__(self, interval: int | None = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self._pending: list[dict] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.interval is None:
            self.interval = logger_interval(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Keep this iteration's outputs; flush where the logger will read them."""
        if outputs is not None:
            kept = {}
            for key, value in outputs.items():
                if torch.is_tensor(value):
                    if value.numel() != 1:  # metadata only, no sync
                        raise ValueError(
                            f"model output {key!r} has {value.numel()} elements; only "
                            "scalars can be logged"
                        )
                    value = value.detach()
                kept[key] = value
            self._pending.append(kept)
        if (
            self.every_n_inner_iters(batch_idx, self.interval)
            or self.every_n_train_iters(runner, self.interval)
            or self.end_of_epoch(runner.train_dataloader, batch_idx)
        ):
            self._flush(runner)

    def _flush(self, runner) -> None:
        # float64 holds every float dtype exactly: the same Python floats as ``.item()``
        tensors = [v.double().reshape(()) for out in self._pending for v in out.values()
                   if torch.is_tensor(v)]  # fmt: skip
        values = iter(torch.stack(tensors).tolist() if tensors else [])  # the one sync
        for out in self._pending:
            for key, value in out.items():
                value = next(values) if torch.is_tensor(value) else value
                runner.message_hub.update_scalar(f"train/{key}", value)
        self._pending = []

    def before_val(self, runner) -> None:
        self._flush(runner)
        super().before_val(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Flush, and store the message hub with the flushed values (the runner copied it
        before calling this hook)."""
        if self._pending:
            self._flush(runner)
            checkpoint["message_hub"] = apply_to(
                runner.message_hub.state_dict(), lambda x: hasattr(x, "cpu"), lambda x: x.cpu()
            )

    def after_train(self, runner) -> None:
        self._flush(runner)
        super().after_train(runner)
