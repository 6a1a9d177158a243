"""Training hooks: compiled transformer blocks, the deferred finite check."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_lut
from mmengine.registry import HOOKS
from torch._dynamo.utils import counters

from lut_plugin.runtime import (
    CompileTransformerBlocksHook,
    FiniteCheckHook,
    compile_transformer_blocks,
)


def _views(batch: int = 4, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 32, 32, generator=gen) for _ in range(2)]


# -- compile -------------------------------------------------------------------------------------


def test_compiled_blocks_give_the_eager_loss_and_gradients_with_the_same_keys():
    """``aot_eager``: Dynamo capture and AOT autograd as with inductor, without the C++
    code generation that would take minutes on this CPU. Also the one-graph check of the
    default model (no drop path, no fused GELU)."""
    eager = build_tiny_lut()
    compiled = build_tiny_lut()
    compiled.load_state_dict(eager.state_dict())
    keys = list(compiled.state_dict())
    torch._dynamo.reset()  # compile afresh, not from an earlier test's cache
    # student encoder 2 blocks + teacher encoder 2 + decoder 1
    assert compile_transformer_blocks(compiled, backend="aot_eager") == 5
    assert list(compiled.state_dict()) == keys
    assert all(b._compiled_call_impl is not None for b in compiled.backbone.layers)
    assert all(b._compiled_call_impl is not None for b in compiled.teacher["backbone"].layers)
    x = _views()
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(1))
    counters.clear()
    results = []
    for model in (eager, compiled):
        model.train()
        losses = model.loss(x, noise=noise)
        sum(losses.values()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((losses, grads))
    (eager_losses, eager_grads), (compiled_losses, compiled_grads) = results
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] > 0
    for key in ("loss_mim", "loss_bc"):
        torch.testing.assert_close(compiled_losses[key], eager_losses[key], atol=1e-6, rtol=1e-5)
    assert eager_grads.keys() == compiled_grads.keys()
    for name in eager_grads:
        torch.testing.assert_close(compiled_grads[name], eager_grads[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("drop_path_rate", "fuse_teacher_gelu"), [(0.1, False), (0.0, True)])
def test_compiled_blocks_are_one_graph_each(drop_path_rate, fuse_teacher_gelu):
    """mmpretrain gives DropPath numpy drop rates, which Dynamo would branch on as tensors:
    the old code split every encoder block into 6 graphs (5 breaks)."""
    model = build_tiny_lut(
        backbone=dict(drop_path_rate=drop_path_rate), fuse_teacher_gelu=fuse_teacher_gelu
    )
    torch._dynamo.reset()  # compile afresh, not from an earlier test's cache
    compile_transformer_blocks(model, backend="aot_eager")
    counters.clear()
    model.train()
    sum(model.loss(_views()).values()).backward()
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] > 0


class _Runner:
    def __init__(self, model) -> None:
        import logging

        self.model = model
        self.logger = logging.getLogger("test_engine_hooks")


def test_compile_hook_is_registered_and_refuses_a_model_without_blocks():
    hook = HOOKS.build(dict(type="CompileTransformerBlocksHook", backend="eager"))
    assert isinstance(hook, CompileTransformerBlocksHook)
    model = build_tiny_lut()
    hook.before_train(_Runner(model))
    assert model.neck.decoder_blocks[0]._compiled_call_impl is not None
    with pytest.raises(ValueError, match="found no block of the classes"):
        hook.before_train(_Runner(torch.nn.Linear(2, 2)))


# -- the deferred finite check -------------------------------------------------------------------


class _OptimWrapper:
    def __init__(self) -> None:
        self.stepped = True

    def should_update(self) -> bool:
        return self.stepped


class _CheckRunner:
    """What the hook reads of a Runner: the model, the iteration, the optimiser wrapper."""

    def __init__(self, model) -> None:
        self.model, self.iter, self.hooks = model, 0, []
        self.optim_wrapper = _OptimWrapper()


def _iterate(hook, runner, losses: dict, cur_iter: int) -> None:
    runner.iter = cur_iter
    hook.after_train_iter(runner, cur_iter, outputs=losses)


def _ok(value: float = 1.0) -> dict:
    return {"loss": torch.tensor(value), "loss_mim": torch.tensor(value)}


def test_finite_check_reads_only_every_interval_and_names_the_first_bad_iteration():
    model = torch.nn.Linear(3, 2)
    runner = _CheckRunner(model)
    hook = FiniteCheckHook(interval=5)
    hook.before_train(runner)
    _iterate(hook, runner, _ok(), 0)
    _iterate(hook, runner, {"loss": torch.tensor(math.inf), "loss_mim": torch.tensor(math.inf)}, 1)
    _iterate(hook, runner, {"loss": torch.tensor(math.nan), "loss_mim": torch.tensor(math.nan)}, 2)
    _iterate(hook, runner, _ok(), 3)  # recorded, not read: no error yet
    with pytest.raises(FloatingPointError, match=r"non-finite loss at iteration 1: loss_mim=inf\."):
        _iterate(hook, runner, _ok(), 4)  # (4 + 1) % 5 == 0: read


def test_finite_check_names_weights_hit_by_a_non_finite_gradient():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    runner = _CheckRunner(model)
    hook = FiniteCheckHook(interval=100)
    hook.before_train(runner)
    _iterate(hook, runner, _ok(), 0)
    with torch.no_grad():
        model[0].weight[0, 0] = math.nan  # what AdamW makes of an inf gradient
    runner.optim_wrapper.stepped = False  # an accumulation iteration: weights not read
    _iterate(hook, runner, _ok(), 1)
    runner.optim_wrapper.stepped = True
    _iterate(hook, runner, _ok(), 2)
    _iterate(hook, runner, _ok(), 3)
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite weights after the optimiser step of iteration 2: 0\.weight ",
    ):
        hook.before_save_checkpoint(runner, checkpoint={})


def test_finite_check_reads_at_the_end_of_training_and_passes_finite_runs():
    model = torch.nn.Linear(3, 2)
    runner = _CheckRunner(model)
    hook = FiniteCheckHook(interval=100)
    hook.before_train(runner)
    for i in range(3):
        _iterate(hook, runner, _ok(float(i)), i)
    hook.before_save_checkpoint(runner, checkpoint={})
    hook.after_train(runner)  # nothing non-finite: no error
    # A single 'loss' key (as upstream MAE) is named itself.
    _iterate(hook, runner, {"loss": torch.tensor(math.nan)}, 3)
    with pytest.raises(FloatingPointError, match="iteration 3: loss=nan"):
        hook.after_train(runner)


def test_finite_check_reads_every_iteration_on_the_cpu_by_default():
    runner = _CheckRunner(torch.nn.Linear(3, 2))
    hook = FiniteCheckHook()
    hook.before_train(runner)
    assert hook.interval == 1
    with pytest.raises(FloatingPointError, match="iteration 0"):
        _iterate(hook, runner, {"loss": torch.tensor(math.nan)}, 0)
    with pytest.raises(ValueError, match="interval"):
        FiniteCheckHook(interval=0)
