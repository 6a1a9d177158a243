"""LUT's toy config through mmengine's machinery: the non-finite checks, build-time errors,
gradient accumulation, ``compile``, two processes. (test_lut_training.py: the resumes.)"""

from __future__ import annotations

import math
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS
from utils import (
    CONFIGS,
    HELPERS,
    TOY_CFG,
    assert_state_dicts_equal,
    load_checkpoint,
    load_tool,
    run_dist_train,
    state_dict_max_diff,
    toy_options,
    train_here,
)

from lut_plugin.runtime import SafeResumeRunner
from lut_plugin.runtime.compat import strip_collate_scope


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """The toy data of test_lut_training.py's runs (16 training, 4 validation images)."""
    root = tmp_path_factory.mktemp("toy")
    dataset = Config.fromfile(str(TOY_CFG)).train_dataloader.dataset
    DATASETS.build({**dataset, "data_root": str(root), "num_train": 16, "num_val": 4})
    return root


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("model.backbone.mask_ratio=0.4", "mask_ratio must satisfy 0.5 <= mask_ratio < 1"),
        ("train_cfg.max_epochs=0", "train_cfg.max_epochs must be a positive integer, got 0"),
        # 16 images, drop_last=True
        ("train_dataloader.batch_size=32", "train_dataloader gives no batch: 16 samples"),
    ],
)
def test_bad_config_value_fails_before_training(data_root, tmp_path, option, message):
    with pytest.raises(ValueError, match=message):
        train_here(TOY_CFG, tmp_path / "work", cfg_options=[*toy_options(data_root), option])
    assert not list((tmp_path / "work").glob("*.pth"))


def test_two_process_distributed_run_ends_with_identical_ranks(data_root, tmp_path, monkeypatch):
    """tools/dist_train.sh: torchrun, 2 processes (gloo on CPU), the 8-GPU head norm (SyncBN)
    set to BN by --cpu; both ranks end with the same student, decoder, heads and teacher,
    BatchNorm statistics included."""
    work = tmp_path / "dist"
    options = [
        *toy_options(data_root, epochs=1),
        "train_dataloader.batch_size=4",
        "model.projector.norm=syncbn",
        "model.predictor.norm=syncbn",
    ]
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])
    )
    proc = run_dist_train(CONFIGS / "lut_toy_rank_states.py", 2, work, options, 30500, ["--cpu"])
    assert "Distributed training: True" in proc.stdout
    assert "--cpu: distributed: gloo, DDP without device_ids, 2 SyncBN config(s) -> BN" in (
        proc.stdout
    )
    # 16 images over 2 processes with batch 4: two iterations.
    assert "Epoch(train) [1][2/2]" in proc.stdout and "loss_bc:" in proc.stdout
    rank0 = torch.load(work / "rank0_state.pth", weights_only=True)
    rank1 = torch.load(work / "rank1_state.pth", weights_only=True)
    assert any(k.startswith("teacher.projector.") for k in rank0)
    assert_state_dicts_equal(rank0, rank1)
    assert_state_dicts_equal(rank0, load_checkpoint(work / "epoch_1.pth")["state_dict"])


def _toy_runner(work_dir, data_root, epochs: int = 3, runner_cls=Runner, **overrides) -> Runner:
    """An in-process Runner of the toy config with ``toy_options`` (parsed as train.py parses
    them), no workers."""
    args = load_tool("train").parse_args(["c.py", "--cfg-options", *toy_options(data_root, epochs)])
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.merge_from_dict(
        {
            **args.cfg_options,
            "work_dir": str(work_dir),
            "train_dataloader.num_workers": 0,
            "train_dataloader.persistent_workers": False,
            **overrides,
        }
    )
    strip_collate_scope(cfg.train_dataloader)
    return runner_cls.from_cfg(cfg)


@pytest.mark.parametrize("interval", [None, 100], ids=["read-every-iteration", "read-deferred"])
def test_non_finite_gradient_stops_before_a_checkpoint_holds_it(data_root, tmp_path, interval):
    """A finite loss, an infinite gradient: the weights it reaches never get saved, whether
    the check is read at once (CPU default) or only before the next save (as on GPUs)."""
    hooks = [dict(type="FiniteCheckHook", interval=interval)]
    runner = _toy_runner(tmp_path, data_root, epochs=3, custom_hooks=hooks)

    def poison(grad):  # iteration 2 is the first of epoch 2; epoch_1.pth exists by then
        return grad * math.inf if runner.iter == 2 else grad

    runner.model.backbone.cls_token.register_hook(poison)
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    message = str(err.value)
    assert "non-finite weights after the optimiser step of iteration 2: " in message
    assert "backbone.cls_token" in message
    assert "non-finite loss at iteration 2" not in message  # the loss itself was finite
    if interval == 100:  # read before saving epoch_2.pth, after iteration 3 (loss NaN by then)
        assert "non-finite loss at iteration 3: loss_mim=nan" in message
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth"]
    state = load_checkpoint(tmp_path / "epoch_1.pth")["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.filterwarnings("ignore:Detected call of `scheduler.step()` before")
def test_accumulation_updates_the_teacher_once_per_optimiser_step(data_root, tmp_path):
    """accumulative_counts=2 over 5 data iterations: optimiser steps after iterations 1, 3 and
    4 (the last, incomplete group), and exactly there the teacher, with momentum 1 at the end."""
    runner = _toy_runner(
        tmp_path,
        data_root,
        epochs=1,
        **{"train_dataloader.batch_size": 3, "optim_wrapper.accumulative_counts": 2},
    )  # 16 images, batch 3, drop_last: 5 iterations
    model = runner.model
    updates = []
    update_teacher = model.update_teacher

    def counting_update(cur_iter, max_iters):
        updates.append((cur_iter, max_iters))
        return update_teacher(cur_iter, max_iters)

    model.update_teacher = counting_update
    runner.train()
    steps = runner.optim_wrapper.optimizer.state[model.backbone.cls_token]["step"].item()
    assert updates == [(1, 5), (3, 5), (4, 5)] and steps == 3
    assert runner.message_hub.get_scalar("train/teacher_momentum").current() == 1.0


def test_the_runner_gives_every_drop_path_a_python_rate(data_root, tmp_path):
    """mmpretrain's ViT passes numpy rates, on which Dynamo would branch (a graph break in
    every block under mmengine's compile key)."""
    runner = _toy_runner(tmp_path, data_root, epochs=1, runner_cls=SafeResumeRunner)
    rates = [m.drop_prob for m in runner.model.modules() if hasattr(m, "drop_prob")]
    assert len(rates) >= 3 * 4 and all(type(r) is float for r in rates)


def test_mmengine_compile_of_the_whole_train_step_trains_like_eager(data_root, tmp_path):
    """mmengine's own ``compile`` config key: Dynamo traces the whole ``train_step``
    (forward, backward, the optimiser step and LUT's teacher update after it, running what it
    cannot trace eagerly), here with the ``aot_eager`` backend. A one-iteration run (one batch
    of 16: each new batch would retrace the step, as Dynamo guards on its metainfo strings,
    the learning rate and the momentum) is the eager run up to float rounding: the compiled
    code rounds differently in places, and the attention's key bias, whose gradient is zero
    but for rounding, takes an Adam step of the learning rate's size from that noise. One
    encoder and one decoder block: tracing time grows with the blocks and their parameters."""
    options = [*toy_options(data_root, epochs=1), "train_dataloader.batch_size=16",
               "model.backbone.arch.num_layers=1", "model.neck.decoder_depth=1"]  # fmt: skip
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    train_here(TOY_CFG, eager, cfg_options=options)
    train_here(TOY_CFG, compiled, cfg_options=[*options, "compile.backend=aot_eager"])
    diffs = state_dict_max_diff(
        load_checkpoint(compiled / "epoch_1.pth")["state_dict"],
        load_checkpoint(eager / "epoch_1.pth")["state_dict"],
    )
    key_bias = {k: v for k, v in diffs.items() if k.endswith("attn.qkv.bias")}
    assert key_bias and max(key_bias.values()) < 2e-4
    assert max(v for k, v in diffs.items() if k not in key_bias) < 2e-6
