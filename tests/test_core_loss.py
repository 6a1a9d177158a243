"""The broader-context loss against hand computations (METHOD.md step 7)."""

from __future__ import annotations

import torch

from lut_plugin.core import BroaderContextLoss, negative_cosine_loss

broader_context_loss = BroaderContextLoss()


def test_hand_computed_value():
    # sample 0: cos(p1,t2)=0 -> 2, cos(p2,t1)=1 -> 0; sample 1: cos=-1 -> 4, cos=0 -> 2
    p1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    t2 = torch.tensor([[0.0, 1.0], [-3.0, 0.0]])
    p2 = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    t1 = torch.tensor([[2.0, 2.0], [5.0, 0.0]])
    # term 1 = mean(2, 4) = 3; term 2 = mean(0, 2) = 1; L = (3 + 1) / 2 = 2
    assert broader_context_loss(p1, p2, t1, t2).item() == 2.0
    assert negative_cosine_loss(p1, t2).item() == 3.0


def test_cross_view_pairing():
    """p1 is compared with t2 (not t1)."""
    p = torch.tensor([[1.0, 0.0]])
    t_same, t_other = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # p1 ~ t1 and p2 ~ t2 agree perfectly, the cross pairs are orthogonal -> 2, not 0
    assert broader_context_loss(p, t_other, t_same, t_other).item() == 2.0


def test_gradient_flows_only_into_the_student():
    p1 = torch.tensor([[1.0, 0.0]], requires_grad=True)
    p2 = torch.tensor([[0.0, 2.0]], requires_grad=True)
    t1 = torch.tensor([[1.0, 1.0]], requires_grad=True)
    t2 = torch.tensor([[0.0, 1.0]], requires_grad=True)
    broader_context_loss(p1, p2, t1, t2).backward()
    assert t1.grad is None and t2.grad is None
    # d/dp [-(p . t)/(|p||t|)] = -(t/|t| - cos * p/|p|) / |p|; the loss is 0.5 * 2 * that.
    # p1=[1,0], t2=[0,1]: cos=0 -> grad = -[0, 1]
    torch.testing.assert_close(p1.grad, torch.tensor([[0.0, -1.0]]))
    # p2=[0,2], t1=[1,1]/sqrt2: cos=1/sqrt2 -> grad = -([1,1]/sqrt2 - [0,1]/sqrt2) / 2
    s = 2**-0.5
    torch.testing.assert_close(p2.grad, torch.tensor([[-s / 2, 0.0]]))


def test_scale_invariant_and_bounded():
    torch.manual_seed(0)
    p1, p2, t1, t2 = torch.randn(4, 8, 16).unbind(0)
    base = broader_context_loss(p1, p2, t1, t2)
    torch.testing.assert_close(broader_context_loss(3 * p1, 0.5 * p2, 7 * t1, t2), base)
    assert 0.0 <= base.item() <= 4.0
