"""The projector / predictor MLP (METHOD.md step 5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lut_plugin.core import ProjectionMLP


def test_default_structure_matches_the_paper():
    mlp = ProjectionMLP(8, 16)
    layers = list(mlp.layers)
    assert [type(m) for m in layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert layers[0].bias is None and layers[3].bias is None
    assert (layers[0].in_features, layers[0].out_features) == (8, 16)
    assert (layers[3].in_features, layers[3].out_features) == (16, 8)


def test_hand_computed_forward_without_norm():
    mlp = ProjectionMLP(2, 2, norm="none", act="relu")
    with torch.no_grad():
        mlp.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        mlp.layers[2].weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0]]))
    out = mlp(torch.tensor([[3.0, 4.0]]))  # relu([3, -4]) = [3, 0] -> [3, 6]
    assert out.tolist() == [[3.0, 6.0]]


def test_hand_computed_forward_with_bn_in_eval_and_train_mode():
    """Eval mode (the teacher) uses the running statistics; train mode the batch's."""
    mlp = ProjectionMLP(1, 1, norm="bn", act="relu")
    bn = mlp.layers[1]
    with torch.no_grad():
        mlp.layers[0].weight.fill_(2.0)
        mlp.layers[3].weight.fill_(3.0)
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(4.0 - bn.eps)
        bn.weight.fill_(0.5)
        bn.bias.fill_(0.25)
    x = torch.tensor([[1.0], [3.0]])  # after the first layer: [2, 6]
    # eval: (h - 1) / 2 * 0.5 + 0.25 = [0.5, 1.5] -> relu -> * 3 = [1.5, 4.5]
    torch.testing.assert_close(mlp.eval()(x), torch.tensor([[1.5], [4.5]]))
    # train: batch mean 4, biased var 4 -> (h - 4) / 2 = [-1, 1] -> [-0.25, 0.75] -> [0, 2.25]
    out = mlp.train()(x)
    torch.testing.assert_close(out, torch.tensor([[0.0], [2.25]]), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("norm", "act", "types"),
    [
        (
            "ln",
            "gelu",
            [nn.Linear, nn.LayerNorm, nn.GELU, nn.Linear, nn.LayerNorm, nn.GELU, nn.Linear],
        ),
        ("none", "relu", [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]),
        (
            "syncbn",
            "relu",
            [nn.Linear, nn.SyncBatchNorm, nn.ReLU, nn.Linear, nn.SyncBatchNorm, nn.ReLU, nn.Linear],
        ),
    ],
)
def test_options(norm, act, types):
    mlp = ProjectionMLP(4, 8, 6, depth=3, norm=norm, act=act)
    assert [type(m) for m in mlp.layers] == types
    assert mlp.layers[-1].out_features == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(norm="batchnorm"), "unknown norm"),
        (dict(act="tanh"), "unknown act"),
        (dict(depth=0), "depth"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProjectionMLP(4, 8, **kwargs)
