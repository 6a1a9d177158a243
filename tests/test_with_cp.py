"""``with_cp``: activation checkpointing of the student's blocks changes no number."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_lut
from test_simmim import build, tiny_backbone_cfg, tiny_lut_simmim_cfg

import lut_plugin.models.backbones.lut_vit as lut_vit


def _step(model, noise: torch.Tensor) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 3, 32, 32, generator=gen) for _ in range(2)]
    model.train()
    torch.manual_seed(7)  # drop path draws
    losses = model.loss(views, noise=noise)
    sum(losses.values()).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return losses, grads


def _builders():
    mae = dict(backbone=dict(drop_path_rate=0.2))
    yield "mae", lambda cp: build_tiny_lut(backbone={**mae["backbone"], "with_cp": cp}), 64
    yield (
        "mff",
        lambda cp: build_tiny_lut(
            backbone=dict(type="LUTMFFViT", out_indices=[0, 1], drop_path_rate=0.2, with_cp=cp)
        ),
        64,
    )
    yield (
        "simmim",
        lambda cp: build(
            tiny_lut_simmim_cfg(backbone=tiny_backbone_cfg(drop_path_rate=0.2, with_cp=cp))
        ),
        16,
    )


@pytest.mark.parametrize(("flavour", "make", "length"), list(_builders()))
def test_loss_and_every_gradient_are_identical(flavour, make, length, monkeypatch):
    calls = []

    def counting_checkpoint(fn, *args, **kwargs):
        calls.append(fn)
        return torch.utils.checkpoint.checkpoint(fn, *args, **kwargs)

    monkeypatch.setattr(lut_vit, "checkpoint", counting_checkpoint)
    noise = torch.rand(4, length, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    plain = make(False)
    torch.manual_seed(0)
    checkpointed = make(True)
    state, state_cp = plain.state_dict(), checkpointed.state_dict()
    assert state.keys() == state_cp.keys()  # checkpoints load either way
    assert all(torch.equal(state[k], state_cp[k]) for k in state)  # the same initialisation
    losses, grads = _step(plain, noise)
    assert calls == []
    losses_cp, grads_cp = _step(checkpointed, noise)
    # each student block once (both views in one batch) and the MAE decoder's; none of the
    # teacher's (it runs without gradients)
    student_blocks = [*checkpointed.backbone.layers._modules.values()]
    decoder = getattr(checkpointed.neck, "decoder_blocks", None)
    student_blocks += [*decoder._modules.values()] if decoder is not None else []
    assert calls == student_blocks
    assert losses.keys() == losses_cp.keys() and grads.keys() == grads_cp.keys()
    for key in losses:
        torch.testing.assert_close(losses_cp[key], losses[key], rtol=0, atol=0)
    assert all(g is not None for g in grads.values() if g is not None) and len(grads) > 10
    for name, grad in grads.items():
        torch.testing.assert_close(grads_cp[name], grad, rtol=0, atol=0, msg=name)
