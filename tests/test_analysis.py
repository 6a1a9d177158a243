"""The paper's analyses (attention maps, attention distance, spectrum) on hand-made inputs."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_lut

from lut_plugin.analysis import (
    capture_attention,
    effective_rank,
    mean_attention_distance,
    singular_value_spectrum,
)


def test_attention_distance_by_hand():
    # 1x2 grid of 16-px patches plus a cls token that is dropped and renormalised away.
    attn = torch.tensor([[0.2, 0.4, 0.4], [0.0, 0.5, 0.5], [0.5, 0.25, 0.25]])
    attn = attn.view(1, 1, 3, 3)
    # every patch query: half on itself (0 px), half on the other patch (16 px) -> 8
    assert mean_attention_distance(attn, (1, 2), 16).tolist() == [8.0]
    self_only = torch.eye(3).view(1, 1, 3, 3)
    assert mean_attention_distance(self_only, (1, 2), 16).tolist() == [0.0]
    # 2x2 grid, query (0,0) attends only to (1,1): sqrt(2) * 16; all queries symmetric
    opposite = torch.zeros(1, 1, 5, 5)
    for q, k in [(1, 4), (2, 3), (3, 2), (4, 1)]:
        opposite[0, 0, q, k] = 1.0
    torch.testing.assert_close(
        mean_attention_distance(opposite, (2, 2), 16), torch.tensor([16 * math.sqrt(2)])
    )
    with pytest.raises(ValueError, match="grid"):
        mean_attention_distance(attn, (2, 2), 16)


def test_spectrum_by_hand():
    feats = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    # centred already: singular values sqrt(18) and sqrt(8)
    raw = singular_value_spectrum(feats, normalize=False)
    torch.testing.assert_close(raw, torch.tensor([18**0.5, 8**0.5], dtype=torch.float64))
    torch.testing.assert_close(
        singular_value_spectrum(feats), torch.tensor([1.0, 2 / 3], dtype=torch.float64)
    )
    assert effective_rank(torch.tensor([1.0, 1.0])) == pytest.approx(2.0)
    assert effective_rank(torch.tensor([1.0, 0.0])) == pytest.approx(1.0)


def test_captured_attention_reproduces_the_blocks_output():
    model = build_tiny_lut()
    encoder = model.backbone
    encoder.eval()  # (mmpretrain ViTs return None from train/eval)
    outputs = []
    handle = encoder.layers[-1].attn.register_forward_hook(lambda m, a, out: outputs.append(out))
    inputs = []
    pre = encoder.layers[-1].attn.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), capture_attention(encoder) as maps:
        encoder.forward_full(x)
    handle.remove()
    pre.remove()
    assert len(maps) == 2 and maps[-1].shape == (2, 4, 65, 65)
    torch.testing.assert_close(maps[-1].sum(-1), torch.ones(2, 4, 65))
    attn = encoder.layers[-1].attn
    v = attn.qkv(inputs[0]).reshape(2, 65, 3, 4, 16).permute(2, 0, 3, 1, 4)[2]
    out = attn.proj((maps[-1] @ v).transpose(1, 2).reshape(2, 65, 64))
    torch.testing.assert_close(out, outputs[0], atol=1e-5, rtol=1e-5)
    # hooks are gone afterwards
    assert not encoder.layers[-1].attn._forward_pre_hooks
