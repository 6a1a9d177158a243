"""Training hooks without a host synchronisation per iteration, and compiled blocks."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from mmengine.hooks import Hook, LoggerHook, RuntimeInfoHook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.utils import apply_to
from torch import nn

from .compat import python_drop_rates


def _logger_interval(runner) -> int:
    loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
    return loggers[0].interval if loggers else 1


@HOOKS.register_module()
class FiniteCheckHook(Hook):
    """Stop training when a loss or a weight becomes NaN or infinite.

    After each iteration the hook records on the device, without waiting for it, the first
    iteration at which each loss term (output keys containing ``'loss'``) was non-finite and,
    after each optimiser step, the first at which a floating-point parameter or buffer was. The
    record is read, and a ``FloatingPointError`` naming the terms, tensors and iterations
    raised, every ``interval`` iterations, before every checkpoint is saved (no checkpoint holds
    bad values, none is deleted for it) and at the end of training. Steps that fp16 loss
    scaling skips are not an error.

    Args:
        interval (int, optional): Iterations between reads. Defaults to every iteration for a
            model on the CPU (reading costs nothing there), else the ``LoggerHook`` interval.
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
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._tensors = {n: t for n, t in model.state_dict(keep_vars=True).items()
                         if t.is_floating_point() and t.numel() > 0}  # fmt: skip
        if self.interval is None:
            on_cpu = all(t.device.type == "cpu" for t in self._tensors.values())
            self.interval = 1 if on_cpu else _logger_interval(runner)

    def _record(self, name: str, bad: torch.Tensor, cur_iter: int, value=None) -> None:
        if name not in self._first_bad:
            self._first_bad[name] = torch.full((), -1, dtype=torch.long, device=bad.device)
        new = bad & (self._first_bad[name] < 0)
        self._first_bad[name] = torch.where(new, cur_iter, self._first_bad[name])
        if value is not None:
            self._first_value[name] = torch.where(new, value, self._first_value.get(name, value))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for key, value in (outputs or {}).items():
            if "loss" in key and isinstance(value, torch.Tensor):
                value = value.detach().float().mean()
                self._record(key, ~torch.isfinite(value), runner.iter, value)
        should_update = getattr(runner.optim_wrapper, "should_update", None)
        if self._tensors and (not callable(should_update) or should_update()):
            # inf-norm: non-finite iff an element is, and it cannot overflow
            norms = torch._foreach_norm(list(self._tensors.values()), math.inf, dtype=torch.float32)
            self._record("weights", ~torch.isfinite(torch.stack(norms)).all(), runner.iter)
        if self.every_n_train_iters(runner, self.interval):
            self._raise_if_not_finite()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._raise_if_not_finite()

    def after_train(self, runner) -> None:
        self._raise_if_not_finite()

    def _raise_if_not_finite(self) -> None:
        if not self._first_bad:
            return
        names = list(self._first_bad)
        firsts = torch.stack([self._first_bad[n] for n in names]).tolist()  # the one sync
        bad = dict(sorted(((n, i) for n, i in zip(names, firsts) if i >= 0), key=lambda x: x[1]))
        if any(n not in ("loss", "weights") for n in bad):
            bad.pop("loss", None)  # the sum of the terms that are named
        parts = []
        for name, it in bad.items():
            if name != "weights":
                parts.append(f"non-finite loss at iteration {it}: {name}="
                             f"{self._first_value[name].item()}")  # fmt: skip
                continue
            tensors = [n for n, t in self._tensors.items() if not torch.isfinite(t).all()]
            more = f" and {len(tensors) - 5} more" if len(tensors) > 5 else ""
            parts.append(
                f"non-finite weights after the optimiser step of iteration {it}: "
                f"{', '.join(tensors[:5])}{more} (a non-finite gradient reached them)"
            )
        if parts:
            raise FloatingPointError(
                "; ".join(parts) + ". Training stopped; checkpoints saved "
                "before are untouched and none was saved with these values"
            )


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` that reads the logged losses once per logging interval.

    mmengine's hook turns every logged loss into a Python float each iteration, so the host
    waits for the GPU before it may queue the next step. This one keeps the loss tensors and
    hands them to the message hub, in order and with the same values, in one read: at the
    iterations the ``LoggerHook`` logs, at the end of each epoch, before validation and before a
    checkpoint is saved. Logs and checkpoints are those of ``RuntimeInfoHook``.

    Args:
        interval (int, optional): Iterations between reads. Defaults to the ``LoggerHook``'s.
    """

    def __init__(self, interval: int | None = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self._pending: list[dict] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self.interval = self.interval or _logger_interval(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        kept = {}
        for key, value in (outputs or {}).items():
            if torch.is_tensor(value):
                if value.numel() != 1:  # metadata only, no sync
                    raise ValueError(f"model output {key!r} has {value.numel()} elements; "
                                     "only scalars can be logged")  # fmt: skip
                value = value.detach()
            kept[key] = value
        self._pending.append(kept)
        if (self.every_n_inner_iters(batch_idx, self.interval)
                or self.every_n_train_iters(runner, self.interval)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)):  # fmt: skip
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


def compile_transformer_blocks(
    model: nn.Module, block_names: Iterable[str] = ("TransformerEncoderLayer",), **compile_kwargs
) -> int:
    """Compile in place every block of ``model`` whose class (or a base) is named in
    ``block_names`` (mmpretrain's and mmseg's ViT layers by default); return how many.

    ``nn.Module.compile`` keeps the module objects: state-dict keys, checkpoints and the
    momentum teacher's copies are unchanged. ``compile_kwargs`` go to ``torch.compile``.
    """
    names = set(block_names)
    blocks = [m for m in model.modules() if names.intersection(c.__name__ for c in type(m).__mro__)]
    for block in blocks:
        python_drop_rates(block)
        block.compile(**compile_kwargs)
    return len(blocks)


@HOOKS.register_module()
class CompileTransformerBlocksHook(Hook):
    """Compile the transformer blocks of the trained model before training
    (:func:`compile_transformer_blocks`); ``tools/train.py --compile`` adds it.

    Args:
        block_names (Iterable[str]): Class names of the blocks.
            Defaults to ``('TransformerEncoderLayer',)``.
        **compile_kwargs: Passed to ``torch.compile`` (``mode``, ``backend``...).
    """

    def __init__(
        self, block_names: Iterable[str] = ("TransformerEncoderLayer",), **compile_kwargs
    ) -> None:
        self.block_names, self.compile_kwargs = tuple(block_names), compile_kwargs

    def before_train(self, runner) -> None:
        count = compile_transformer_blocks(runner.model, self.block_names, **self.compile_kwargs)
        if count == 0:
            raise ValueError(f"found no block of the classes {self.block_names} in "
                             f"{type(runner.model).__name__}: pass block_names=[...]")  # fmt: skip
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.compile_kwargs.items())
        runner.logger.info(f"Compiled {count} transformer blocks: torch.compile({kwargs})")
