"""LinearGELU / fuse_linear_gelu: the teacher's MLP layer and its GELU as one call."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from torch import nn

from lut_plugin.core import LinearGELU, fuse_linear_gelu
from lut_plugin.core.fused_gelu import addmm_gelu


def test_linear_gelu_is_the_tanh_gelu_of_the_linear_by_hand():
    layer = LinearGELU(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
        layer.bias.fill_(0.5)
    x = torch.tensor([[1.0, 0.25], [-1.0, 1.0]])
    z = torch.tensor([[1.0], [-2.5]])  # x @ W.T + b by hand
    expected = 0.5 * z * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (z + 0.044715 * z**3)))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
    # With autograd (no fused call): the same values, and a gradient.
    x.requires_grad_(True)
    out = layer(x)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert x.grad is not None and layer.weight.grad is not None


def test_tanh_gelu_stays_within_its_documented_distance_of_the_exact_gelu():
    z = torch.linspace(-8, 8, 100_001, dtype=torch.float64)
    gap = (F.gelu(z) - F.gelu(z, approximate="tanh")).abs().max().item()
    assert 4.0e-4 < gap < 4.8e-4


def test_fusing_an_mmcv_ffn_keeps_its_state_and_uses_the_tanh_gelu():
    torch.manual_seed(0)
    ffn = FFN(embed_dims=8, feedforward_channels=32, act_cfg=dict(type="GELU"))
    reference = FFN(embed_dims=8, feedforward_channels=32, act_cfg=dict(type="GELU"))
    reference.load_state_dict(ffn.state_dict())
    reference.layers[0][1].approximate = "tanh"
    state = ffn.state_dict(keep_vars=True)

    assert fuse_linear_gelu(ffn) == 1
    assert isinstance(ffn.layers[0][0], LinearGELU) and isinstance(ffn.layers[0][1], nn.Identity)
    fused_state = ffn.state_dict(keep_vars=True)
    assert list(fused_state) == list(state)
    assert all(fused_state[k] is state[k] for k in state)  # the same Parameter objects
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(ffn(x), reference(x), rtol=0, atol=0)
    assert fuse_linear_gelu(ffn) == 0  # nothing left to fuse


def test_only_linear_then_gelu_pairs_are_fused():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.GELU(), nn.GELU())
    assert fuse_linear_gelu(model) == 1
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, LinearGELU, nn.Identity, nn.GELU]


def test_the_fused_call_keeps_leading_dimensions_and_the_weight_layout():
    """The CUDA path's call, run on the CPU (where its GELU is the exact one)."""
    x, weight, bias = torch.randn(2, 3, 5), torch.randn(7, 5), torch.randn(7)
    torch.testing.assert_close(addmm_gelu(x, weight, bias), F.gelu(F.linear(x, weight, bias)))
