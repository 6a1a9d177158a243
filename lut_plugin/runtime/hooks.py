"""The non-finite stop without a host synchronisation per iteration, and compiled blocks."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

from .compat import python_drop_rates


def _read(rows: list[dict]) -> list[dict]:
    """The dicts with their tensors as Python floats, in one read (float64 holds every float
    dtype exactly: the values ``.item()`` gives)."""
    tensors = [v.double().reshape(()) for row in rows for v in row.values() if torch.is_tensor(v)]
    values = iter(torch.stack(tensors).tolist() if tensors else [])  # the one sync
    return [{k: next(values) if torch.is_tensor(v) else v for k, v in row.items()} for row in rows]


@HOOKS.register_module()
class FiniteCheckHook(Hook):
    """Stop training when a loss term or a weight becomes NaN or infinite: what is recorded on
    the device is read every ``interval`` iterations, before every checkpoint and at the end
    (docs/training.md).

    Args:
        interval (int, optional): Iterations between reads. Defaults to 1 for a model on the
            CPU (reading costs nothing there), else the ``LoggerHook`` interval.
    """

    priority = "HIGH"  # after_train_iter before the logger and checkpoint hooks

    def __init__(self, interval: int | None = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self._tensors: dict[str, torch.Tensor] = {}
        self._pending: list[dict] = []

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._tensors = {n: t for n, t in model.state_dict(keep_vars=True).items()
                         if t.is_floating_point() and t.numel() > 0}  # fmt: skip
        if self.interval is None:
            on_cpu = all(t.device.type == "cpu" for t in self._tensors.values())
            logger = (h.interval for h in runner.hooks if isinstance(h, LoggerHook))
            self.interval = 1 if on_cpu else next(logger, 1)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        values = {k: v.detach().float().mean() for k, v in (outputs or {}).items()
                  if "loss" in k and torch.is_tensor(v)}  # fmt: skip
        should_update = getattr(runner.optim_wrapper, "should_update", None)
        if self._tensors and (not callable(should_update) or should_update()):
            # inf-norms: non-finite iff an element is, and they cannot overflow
            norms = torch._foreach_norm(list(self._tensors.values()), math.inf, dtype=torch.float32)
            values["weights"] = torch.stack(norms).max()
        self._pending.append({"iter": runner.iter, **values})
        if self.every_n_train_iters(runner, self.interval):
            self._raise_if_not_finite()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._raise_if_not_finite()

    def after_train(self, runner) -> None:
        self._raise_if_not_finite()

    def _raise_if_not_finite(self) -> None:
        bad = {}  # name -> (first bad iteration, value)
        for values in _read(self._pending):
            step = values.pop("iter")
            for name, value in values.items():
                if not math.isfinite(value):
                    bad.setdefault(name, (step, value))
        self._pending = []
        if not bad:
            return
        if bad.keys() - {"loss", "weights"}:
            bad.pop("loss", None)  # the sum of the terms that are named
        parts = []
        for name, (step, value) in sorted(bad.items(), key=lambda item: item[1][0]):
            if name != "weights":
                parts.append(f"non-finite loss at iteration {step}: {name}={value}")
                continue
            tensors = [n for n, t in self._tensors.items() if not torch.isfinite(t).all()]
            more = f" and {len(tensors) - 5} more" if len(tensors) > 5 else ""
            parts.append(
                f"non-finite weights after the optimiser step of iteration {step}: "
                f"{', '.join(tensors[:5])}{more} (a non-finite gradient reached them)"
            )
        raise FloatingPointError("; ".join(parts) + ". Training stopped; checkpoints saved "
                                 "before are untouched and none holds these values")  # fmt: skip


def compile_transformer_blocks(
    model: nn.Module, block_names: Iterable[str] = ("TransformerEncoderLayer",), **compile_kwargs
) -> int:
    """``torch.compile`` in place (module objects and state-dict keys kept) every block whose
    class or a base is named in ``block_names``; return how many."""
    names = set(block_names)
    blocks = [m for m in model.modules() if names.intersection(c.__name__ for c in type(m).__mro__)]
    for block in blocks:
        python_drop_rates(block)
        block.compile(**compile_kwargs)
    return len(blocks)


@HOOKS.register_module()
class CompileTransformerBlocksHook(Hook):
    """Compile the model's transformer blocks before training (``tools/train.py --compile``).

    Args:
        block_names (Iterable[str]): Class names of the blocks.
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
