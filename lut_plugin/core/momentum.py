"""The momentum teacher (METHOD.md steps 6 and 9)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import nn


def cosine_momentum(cur_iter: int, max_iters: int, base: float = 0.996, end: float = 1.0) -> float:
    """``end - (end - base) * (cos(pi * k / (K - 1)) + 1) / 2``: ``base`` at the first iteration,
    ``end`` at the last (mmpretrain's ``CosineEMA`` uses ``k / K`` and never reaches ``end``).

    Args:
        cur_iter (int): Current iteration ``k``, 0-based.
        max_iters (int): Iterations ``K`` of the whole run.
        base (float): Momentum at the first iteration. Defaults to 0.996.
        end (float): Momentum at the last iteration. Defaults to 1.0.
    """
    if not (0.0 <= base <= 1.0 and 0.0 <= end <= 1.0 and max_iters >= 1):
        raise ValueError(f"need momentum in [0, 1], max_iters >= 1; got {base}, {end}, {max_iters}")
    if max_iters == 1:
        return float(base)
    k = min(cur_iter, max_iters - 1)
    return end - (end - base) * (math.cos(math.pi * k / (max_iters - 1)) + 1) / 2


@torch.no_grad()
def momentum_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``theta_T <- m * theta_T + (1 - m) * theta_S``; integer buffers are copied.

    Args:
        teacher (nn.Module): The averaged copy, updated in place.
        student (nn.Module): The trained module; same structure as ``teacher``.
        momentum (float): ``m`` in ``[0, 1]``.
    """
    s_state = student.state_dict(keep_vars=True)
    t_float, s_float = [], []
    for key, t in teacher.state_dict(keep_vars=True).items():
        s = s_state[key].detach()
        if t.dtype.is_floating_point:
            t_float.append(t.data)
            s_float.append(s.to(t.dtype))
        else:
            t.data.copy_(s)
    # lerp: t + (1 - m) * (s - t) = m * t + (1 - m) * s, one fused kernel per dtype/device.
    torch._foreach_lerp_(t_float, s_float, 1.0 - momentum)


class MomentumTeacher(nn.ModuleDict):
    """Frozen copies of student modules, always in eval mode, averaged by :meth:`update_from`.

    Args:
        modules (Mapping[str, nn.Module]): Student modules to copy, e.g.
            ``{'backbone': encoder, 'projector': projector}``.
    """

    def __init__(self, modules: Mapping[str, nn.Module]) -> None:
        super().__init__({name: copy.deepcopy(m) for name, m in modules.items()})
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> MomentumTeacher:
        return super().train(False)

    def update_from(self, students: Mapping[str, nn.Module], momentum: float) -> None:
        """:func:`momentum_update` of each teacher module towards ``students[name]``."""
        for name, teacher in self.items():
            momentum_update(teacher, students[name], momentum)
