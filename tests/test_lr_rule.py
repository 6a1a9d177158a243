"""The authors' square-root lr rule next to mmengine's linear auto_scale_lr."""

from __future__ import annotations

import math

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

from lut_plugin.lr_scaling import SqrtLRScalingHook, lr_scale

BLR = 1.5e-4


def test_hand_numbers():
    lr_4096 = BLR * 4096 / 256  # 2.4e-3, the configs' lr for 4096 images
    assert lr_4096 == pytest.approx(2.4e-3)
    # 4 GPUs x 512 = 2048 images: mmengine's linear rule vs the authors' code
    assert lr_4096 * lr_scale(2048, 4096, "linear") == pytest.approx(1.2e-3)
    assert lr_4096 * lr_scale(2048, 4096, "sqrt") == pytest.approx(1.697e-3, abs=1e-6)
    for batch in (256, 1024, 2048, 4096, 8192):
        assert lr_4096 * lr_scale(batch, 4096, "sqrt") == pytest.approx(BLR * math.sqrt(batch) / 4)
        assert lr_4096 * lr_scale(batch, 4096, "linear") == pytest.approx(BLR * batch / 256)
    with pytest.raises(ValueError, match="rule"):
        lr_scale(2048, 4096, "cubic")
    with pytest.raises(ValueError, match="positive"):
        lr_scale(0, 4096)


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        return dict(loss=self.linear(inputs).pow(2).mean())


class _RecordLR(Hook):
    def __init__(self) -> None:
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.lrs.append(runner.optim_wrapper.get_lr())


def _lrs(tmp_path, name: str, lr: float, scale: bool, sqrt: bool):
    """``lr`` (both parameter groups) and ``base_lr`` of each of 4 iterations (8 images each,
    warm-up then cosine)."""
    torch.manual_seed(0)
    data = [dict(inputs=torch.randn(2)) for _ in range(32)]
    record = _RecordLR()
    runner = Runner(
        model=_Toy(),
        work_dir=str(tmp_path / name),
        experiment_name=f"lr_rule_{name}",
        train_dataloader=DataLoader(data, batch_size=8),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(
            optimizer=dict(type="SGD", lr=lr, weight_decay=1e-4),
            paramwise_cfg=dict(custom_keys={"bias": dict(decay_mult=0.0)}),  # two groups
        ),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type="CosineAnnealingLR", T_max=2, eta_min_ratio=0.1, by_epoch=False, begin=2),
        ],
        auto_scale_lr=dict(base_batch_size=32, enable=scale),
        custom_hooks=[record, *([SqrtLRScalingHook()] if sqrt else [])],
        default_hooks=dict(checkpoint=None),
    )
    runner.train()
    lrs = [step["lr"] for step in record.lrs]
    assert all(len(groups) == 2 and groups[0] == groups[1] for groups in lrs)
    return [groups[0] for groups in lrs], [step["base_lr"][0] for step in record.lrs]


def test_hook_turns_auto_scale_lr_into_the_sqrt_rule(tmp_path):
    # 8 images per step against a base of 32: linear x 0.25, sqrt x 0.5
    sqrt, sqrt_base = _lrs(tmp_path, "sqrt", 0.1, scale=True, sqrt=True)
    direct, _ = _lrs(tmp_path, "direct", 0.05, scale=False, sqrt=False)
    linear, linear_base = _lrs(tmp_path, "linear", 0.1, scale=True, sqrt=False)
    assert len(sqrt) == 4 and sqrt[0] == pytest.approx(0.005)
    assert sqrt == pytest.approx(direct)  # every iteration of the schedule
    assert linear == pytest.approx([v / 2 for v in direct])
    # the logged base_lr stays the configured schedule, as mmengine's linear rule leaves it
    assert sqrt_base == pytest.approx(linear_base) and sqrt_base[0] == pytest.approx(0.01)
    # without auto_scale_lr.enable the hook changes nothing
    assert _lrs(tmp_path, "off", 0.05, scale=False, sqrt=True)[0] == pytest.approx(direct)
