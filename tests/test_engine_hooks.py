"""Training hooks: compiled transformer blocks."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_lut
from mmengine.registry import HOOKS

from lut_plugin.mmpretrain.engine.hooks import (
    CompileTransformerBlocksHook,
    compile_transformer_blocks,
)


def _views(batch: int = 4, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 32, 32, generator=gen) for _ in range(2)]


# -- compile -------------------------------------------------------------------------------------


def test_compiled_blocks_give_the_eager_loss_and_gradients_with_the_same_keys():
    """``aot_eager``: Dynamo capture and AOT autograd as with inductor, without the C++
    code generation that would take minutes on this CPU."""
    eager = build_tiny_lut()
    compiled = build_tiny_lut()
    compiled.load_state_dict(eager.state_dict())
    keys = list(compiled.state_dict())
    # student encoder 2 blocks + teacher encoder 2 + decoder 1
    assert compile_transformer_blocks(compiled, backend="aot_eager") == 5
    assert list(compiled.state_dict()) == keys
    assert all(b._compiled_call_impl is not None for b in compiled.backbone.layers)
    assert all(b._compiled_call_impl is not None for b in compiled.teacher["backbone"].layers)
    x = _views()
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(1))
    results = []
    for model in (eager, compiled):
        model.train()
        losses = model.loss(x, noise=noise)
        sum(losses.values()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((losses, grads))
    (eager_losses, eager_grads), (compiled_losses, compiled_grads) = results
    for key in ("loss_mim", "loss_bc"):
        torch.testing.assert_close(compiled_losses[key], eager_losses[key], atol=1e-6, rtol=1e-5)
    assert eager_grads.keys() == compiled_grads.keys()
    for name in eager_grads:
        torch.testing.assert_close(compiled_grads[name], eager_grads[name], atol=1e-5, rtol=1e-4)


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
