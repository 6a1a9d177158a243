"""Momentum schedule and EMA teacher (METHOD.md steps 6 and 9)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lut_plugin.core import MomentumTeacher, cosine_momentum, momentum_update


def test_schedule_end_points_and_middle():
    assert cosine_momentum(0, 1000) == pytest.approx(0.996, abs=1e-12)
    assert cosine_momentum(999, 1000) == pytest.approx(1.0, abs=1e-12)
    # k = (K - 1) / 2 -> cos = 0 -> m = 1 - 0.004 / 2
    assert cosine_momentum(50, 101) == pytest.approx(0.998, abs=1e-12)
    k, big_k = 10, 101
    expected = 1 - (1 - 0.996) * (math.cos(math.pi * k / (big_k - 1)) + 1) / 2
    assert cosine_momentum(k, big_k) == pytest.approx(expected, abs=1e-12)
    values = [cosine_momentum(i, 50) for i in range(50)]
    assert values == sorted(values)


def test_schedule_validates():
    with pytest.raises(ValueError):
        cosine_momentum(0, 0)
    with pytest.raises(ValueError):
        cosine_momentum(0, 10, base=1.5)


def _bn_net(fill: float) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    for t in net.state_dict().values():
        if t.dtype.is_floating_point:
            t.fill_(fill)
    net[1].num_batches_tracked.fill_(int(fill))
    return net


def test_update_averages_parameters_and_buffers():
    teacher, student = _bn_net(1.0), _bn_net(3.0)
    momentum_update(teacher, student, 0.75)  # 0.75 * 1 + 0.25 * 3 = 1.5
    for key, value in teacher.state_dict().items():
        if value.dtype.is_floating_point:
            assert torch.all(value == 1.5), key
    assert teacher[1].num_batches_tracked.item() == 3  # integer buffers are copied
    assert torch.all(student[0].weight == 3.0)  # the student is untouched


def test_teacher_is_a_frozen_eval_copy():
    student = _bn_net(2.0)
    teacher = MomentumTeacher({"net": student})
    assert all(not p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.training and not teacher["net"][1].training
    with torch.no_grad():
        student[0].weight.fill_(4.0)
    assert torch.all(teacher["net"][0].weight == 2.0)  # a copy, not a view
    teacher.update_from({"net": student}, momentum=0.5)
    assert torch.all(teacher["net"][0].weight == 3.0)
    with pytest.raises(KeyError):
        teacher.update_from({"other": student}, momentum=0.5)


def test_teacher_gets_no_gradient():
    student = nn.Linear(2, 2)
    teacher = MomentumTeacher({"net": student})
    x = torch.randn(3, 2)
    (student(x) - teacher["net"](x)).pow(2).sum().backward()
    assert student.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())
