"""LUT through tools/train.py on the embedded toy data: exact resume, failure safety.

Runs train in this process; the crash and the distributed run are subprocesses."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.runner import Runner
from utils import (
    CONFIGS,
    assert_state_dicts_equal,
    load_checkpoint,
    load_state_dict,
    load_tool,
    logged_losses,
    run_dist_train,
    state_dict_max_diff,
    train_cmd,
    train_here,
)

from lut_plugin.runtime import CheckpointMismatchError, SafeResumeRunner

TOY_CFG = ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_toy_cpu.py"
HELPERS = ROOT / "tests" / "data" / "helpers"


def _options(data_root, epochs: int = 3) -> list[str]:
    # 16 images / batch 8 = 2 iterations per epoch; a checkpoint every epoch. The dataloader
    # runs as configured: a persistent worker process.
    return [
        f"train_dataloader.dataset.data_root={data_root}",
        "train_dataloader.dataset.num_train=16",
        "train_dataloader.dataset.num_val=4",
        "train_dataloader.batch_size=8",
        f"train_cfg.max_epochs={epochs}",
        "default_hooks.checkpoint.interval=1",
        "default_hooks.checkpoint.max_keep_ckpts=5",
        "default_hooks.logger.interval=1",
    ]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """One uninterrupted 3-epoch (6-iteration) run, checkpointing every epoch."""
    tmp = tmp_path_factory.mktemp("lut_train")
    data_root = tmp / "toy"
    work = tmp / "straight"
    out = train_here(TOY_CFG, work, cfg_options=_options(data_root))
    return tmp, data_root, work, out


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_logs_both_losses_and_teacher_momentum(straight_run):
    _, _, work, out = straight_run
    assert "loss_mim:" in out and "loss_bc:" in out and "teacher_momentum:" in out
    ckpt = load_checkpoint(work / "epoch_3.pth")
    assert ckpt["meta"]["iter"] == 6
    keys = ckpt["state_dict"].keys()
    assert any(k.startswith("teacher.backbone.") for k in keys)
    assert any(k.startswith("teacher.projector.") for k in keys)
    # Between epochs 1 and 3 the EMA teacher (momentum >= 0.996) moved, far less than the
    # student it follows.
    first, sd = load_checkpoint(work / "epoch_1.pth")["state_dict"], ckpt["state_dict"]
    teacher, student = (
        (sd[k] - first[k]).abs().max() for k in ("teacher.backbone.cls_token", "backbone.cls_token")
    )
    assert 0 < teacher < 0.1 * student


def _assert_same_run(a, b) -> None:
    """Weights (student, decoder, heads, teacher: parameters and BN statistics), optimiser
    moments and the next batches (loss of every iteration) of two runs are identical."""
    assert a["meta"]["iter"] == b["meta"]["iter"]
    assert_state_dicts_equal(a["state_dict"], b["state_dict"])
    assert any(k.startswith("teacher.") for k in a["state_dict"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_resume_after_interruption_equals_uninterrupted_run(straight_run):
    tmp, data_root, straight, _ = straight_run
    resumed = tmp / "resumed"
    resumed.mkdir()
    # A run that died after epoch 1: only its first checkpoint is left.
    shutil.copy(straight / "epoch_1.pth", resumed / "epoch_1.pth")
    out = train_here(
        TOY_CFG, resumed, "--resume", str(resumed / "epoch_1.pth"), cfg_options=_options(data_root)
    )
    assert "resumed epoch: 1, iter: 2" in out
    assert "persistent_workers=True" in out and "num_workers=1" in out  # as configured
    _assert_same_run(
        load_checkpoint(resumed / "epoch_3.pth"), load_checkpoint(straight / "epoch_3.pth")
    )
    assert sorted(logged_losses(straight)) == [1, 2, 3, 4, 5, 6]
    assert logged_losses(resumed) == {k: v for k, v in logged_losses(straight).items() if k > 2}
    first = load_checkpoint(straight / "epoch_1.pth")["state_dict"]
    moved = state_dict_max_diff(first, load_checkpoint(straight / "epoch_3.pth")["state_dict"])
    assert max(v for k, v in moved.items() if k.startswith("teacher.")) > 0


def test_killed_while_saving_resumes_from_last_complete_checkpoint(straight_run):
    """SIGKILL while epoch_2.pth is being written (max_keep_ckpts=1), then ``--resume``."""
    tmp, data_root, straight, _ = straight_run
    work, marker = tmp / "killed", tmp / "stalled"
    options = [*_options(data_root), "default_hooks.checkpoint.max_keep_ckpts=1"]
    # as many threads as this process's runs use: the same float reductions
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(HELPERS / "slow_checkpoint_train.py"), "epoch_2.pth", str(marker)]
    cmd += train_cmd(TOY_CFG, work, cfg_options=options)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), proc.communicate(timeout=60)[0].decode()[-3000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    # The complete checkpoint is kept and named; the interrupted one does not exist.
    assert (work / "epoch_2.pth.partial").is_file()  # killed while writing it
    assert (work / "last_checkpoint").read_text() == str(work / "epoch_1.pth")
    assert sorted(p.name for p in work.glob("*.pth")) == ["epoch_1.pth"]
    assert load_checkpoint(work / "epoch_1.pth")["meta"]["iter"] == 2

    out = train_here(TOY_CFG, work, "--resume", cfg_options=options)
    assert "resumed epoch: 1, iter: 2" in out
    _assert_same_run(
        load_checkpoint(work / "epoch_3.pth"), load_checkpoint(straight / "epoch_3.pth")
    )
    # The interrupted partial write is cleaned up; older checkpoints are deleted after the new.
    assert sorted(p.name for p in work.iterdir() if p.suffix != ".py" and p.is_file()) == [
        "epoch_3.pth",
        "last_checkpoint",
    ]


def test_deferred_runtime_info_logs_and_checkpoints_as_mmengines(tmp_path):
    """``DeferredRuntimeInfoHook`` (the configs' default) reads the losses every 3 iterations;
    logs and the message hub of a checkpoint taken between two reads (iteration 5) are those
    of mmengine's ``RuntimeInfoHook``."""
    runs = {}
    for hook in ("DeferredRuntimeInfoHook", "RuntimeInfoHook"):
        options = [
            f"train_dataloader.dataset.data_root={tmp_path / 'toy'}",
            "train_dataloader.dataset.num_train=16", "train_dataloader.dataset.num_val=4",
            "train_dataloader.batch_size=4", "train_cfg.max_epochs=2",
            "default_hooks.logger.interval=3", "default_hooks.checkpoint.by_epoch=False",
            "default_hooks.checkpoint.interval=5", f"default_hooks.runtime_info.type={hook}",
        ]  # fmt: skip
        train_here(TOY_CFG, tmp_path / hook, cfg_options=options)
        (log,) = (tmp_path / hook).glob("*/vis_data/scalars.json")
        records = [json.loads(line) for line in log.read_text().splitlines()]
        for record in records:  # wall-clock fields
            for key in ("time", "data_time", "eta"):
                record.pop(key, None)
        hub = load_checkpoint(tmp_path / hook / "iter_5.pth")["message_hub"]["log_scalars"]
        runs[hook] = records, {k: v.data for k, v in hub.items() if "time" not in k}
    (records, hub), (ref_records, ref_hub) = runs.values()
    assert records == ref_records and any("loss_bc" in r for r in records)
    assert hub.keys() == ref_hub.keys() and len(hub["train/loss"][0]) == 5
    for key, (history, counts) in hub.items():
        assert history.tolist() == ref_hub[key][0].tolist(), key
        assert counts.tolist() == ref_hub[key][1].tolist(), key


def test_non_finite_loss_stops_and_keeps_the_good_checkpoint(straight_run):
    tmp, data_root, straight, _ = straight_run
    work = tmp / "diverged"
    work.mkdir()
    good = work / "epoch_1.pth"
    shutil.copy(straight / "epoch_1.pth", good)
    (work / "last_checkpoint").write_text(str(good))
    before = {p.name: _sha(p) for p in work.iterdir()}
    # A finite but absurd weight overflows float32 at the first resumed iteration.
    with pytest.raises(FloatingPointError, match="non-finite loss at iteration 2: loss_bc=inf"):
        train_here(TOY_CFG, work, "--resume", str(good),
                   cfg_options=[*_options(data_root), "model.w_bc=1e39"])  # fmt: skip
    after = {
        p.name: _sha(p) for p in work.iterdir() if p.suffix == ".pth" or p.name == "last_checkpoint"
    }
    assert after == before


def test_mismatched_checkpoint_is_refused_before_training(straight_run):
    tmp, data_root, straight, _ = straight_run
    work = tmp / "mismatch"
    work.mkdir()
    ckpt = work / "epoch_1.pth"
    shutil.copy(straight / "epoch_1.pth", ckpt)
    before = _sha(ckpt)
    options = [*_options(data_root), "model.projector.hid_channels=128",
               "model.predictor.hid_channels=128"]  # fmt: skip
    with pytest.raises(CheckpointMismatchError) as err:
        train_here(TOY_CFG, work, "--resume", str(ckpt), cfg_options=options)
    assert f"checkpoint {ckpt} does not match the model" in str(err.value)
    assert "size mismatch for projector.mlp.layers.0.weight" in str(err.value)
    assert "Epoch(train)" not in next(work.glob("*/*.log")).read_text()
    assert _sha(ckpt) == before and sorted(p.name for p in work.glob("*.pth")) == ["epoch_1.pth"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is not a png", "failed to load image"), (b"", "Cannot load sample")],
)
def test_unreadable_image_is_named(straight_run, tmp_path, content, message):
    """A garbage file (mmcv names it) and an empty one (OpenCV's error names no file)."""
    _, data_root, _, _ = straight_run
    broken_root = tmp_path / "toy"
    shutil.copytree(data_root, broken_root)
    victim = sorted((broken_root / "train").rglob("*.png"))[0]
    victim.write_bytes(content)
    with pytest.raises(Exception) as err:  # noqa: PT011 (re-raised from a loader worker)
        train_here(TOY_CFG, tmp_path / "work", cfg_options=_options(broken_root, epochs=1))
    assert victim.name in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("model.backbone.mask_ratio=0.4", "mask_ratio must satisfy 0.5 <= mask_ratio < 1"),
        ("train_cfg.max_epochs=0", "train_cfg.max_epochs must be a positive integer, got 0"),
        # 16 images, drop_last=True
        ("train_dataloader.batch_size=32", "train_dataloader gives no batch: 16 samples"),
    ],
)
def test_bad_config_value_fails_before_training(tmp_path, option, message):
    with pytest.raises(ValueError, match=message):
        train_here(TOY_CFG, tmp_path / "work", cfg_options=[*_options(tmp_path / "toy"), option])
    assert not list((tmp_path / "work").glob("*.pth"))


def test_momentum_in_checkpoint_log_reaches_one(straight_run):
    _, _, work, _ = straight_run
    logs = sorted(work.glob("*/vis_data/scalars.json"))
    assert logs
    momenta = [
        float(line.split('"teacher_momentum": ')[1].split(",")[0].rstrip("}"))
        for line in logs[0].read_text().splitlines()
        if "teacher_momentum" in line
    ]
    assert momenta[0] == pytest.approx(0.996, abs=1e-6)  # iteration 0
    assert momenta[-1] == pytest.approx(1.0, abs=1e-9)  # iteration 5 = the last
    assert momenta == sorted(momenta)
    assert torch.tensor(momenta).numel() == 6


def test_two_process_distributed_run_ends_with_identical_ranks(straight_run, monkeypatch):
    """tools/dist_train.sh: torchrun, 2 processes (gloo on CPU), the 8-GPU head norm (SyncBN)
    set to BN by --cpu; both ranks end with the same student, decoder, heads and teacher,
    BatchNorm statistics included."""
    tmp, data_root, _, _ = straight_run
    work = tmp / "dist"
    options = [
        *_options(data_root, epochs=1),
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
    """An in-process Runner of the toy config with the options of ``_options``."""
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.merge_from_dict(
        {
            "work_dir": str(work_dir),
            "train_dataloader.dataset.data_root": str(data_root),
            "train_dataloader.dataset.num_train": 16,
            "train_dataloader.dataset.num_val": 4,
            "train_dataloader.batch_size": 8,
            "train_dataloader.num_workers": 0,
            "train_dataloader.persistent_workers": False,
            "train_cfg.max_epochs": epochs,
            "default_hooks.checkpoint.interval": 1,
            "default_hooks.checkpoint.max_keep_ckpts": 5,
            "default_hooks.logger.interval": 1,
            **overrides,
        }
    )
    cfg.train_dataloader.collate_fn = dict(type="default_collate")  # no inherited _scope_
    return runner_cls.from_cfg(cfg)


@pytest.mark.parametrize("interval", [None, 100], ids=["read-every-iteration", "read-deferred"])
def test_non_finite_gradient_stops_before_a_checkpoint_holds_it(straight_run, tmp_path, interval):
    """A finite loss, an infinite gradient: the weights it reaches never get saved, whether
    the check is read at once (CPU default) or only before the next save (as on GPUs)."""
    _, data_root, _, _ = straight_run
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
    state = load_state_dict(tmp_path / "epoch_1.pth")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.filterwarnings("ignore:Detected call of `scheduler.step()` before")
def test_accumulation_updates_the_teacher_once_per_optimiser_step(straight_run, tmp_path):
    """accumulative_counts=2 over 5 data iterations: optimiser steps after iterations 1, 3 and
    4 (the last, incomplete group), and exactly there the teacher, with momentum 1 at the end."""
    _, data_root, _, _ = straight_run
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


def test_compiled_run_trains_like_eager_and_resumes_exactly(straight_run):
    """``--compile`` for real (Dynamo + AOT autograd through the runner: training, the k-NN
    monitor's no-grad passes, checkpoints), with the ``aot_eager`` backend instead of
    inductor's C++ build: it matches the eager run, and a compiled run resumed after epoch 1
    ends exactly where the uninterrupted compiled run does."""
    tmp, data_root, straight, _ = straight_run
    # tools/train.py appends the compile hook after the config's two custom hooks.
    options = [*_options(data_root), "custom_hooks.2.backend=aot_eager"]
    compiled = tmp / "compiled"
    out = train_here(TOY_CFG, compiled, "--compile", cfg_options=options)
    # the toy's 4 student + 4 teacher encoder blocks and 2 decoder blocks
    assert "Compiled 10 transformer blocks: torch.compile(backend='aot_eager')" in out
    eager_sd = load_checkpoint(straight / "epoch_3.pth")["state_dict"]
    compiled_sd = load_checkpoint(compiled / "epoch_3.pth")["state_dict"]
    # aot_eager runs the eager run's aten operators: the same weights to the bit on the CPU.
    assert_state_dicts_equal(compiled_sd, eager_sd)
    resumed = tmp / "compiled_resumed"
    resumed.mkdir()
    shutil.copy(compiled / "epoch_1.pth", resumed / "epoch_1.pth")
    out = train_here(
        TOY_CFG, resumed, "--compile", "--resume", str(resumed / "epoch_1.pth"), cfg_options=options
    )
    assert "resumed epoch: 1, iter: 2" in out
    _assert_same_run(
        load_checkpoint(resumed / "epoch_3.pth"), load_checkpoint(compiled / "epoch_3.pth")
    )


def test_the_runner_gives_every_drop_path_a_python_rate(straight_run, tmp_path):
    """mmpretrain's ViT passes numpy rates, on which Dynamo would branch (a graph break in
    every block under mmengine's compile key)."""
    _, data_root, _, _ = straight_run
    runner = _toy_runner(tmp_path, data_root, epochs=1, runner_cls=SafeResumeRunner)
    rates = [m.drop_prob for m in runner.model.modules() if hasattr(m, "drop_prob")]
    assert len(rates) >= 3 * 4 and all(type(r) is float for r in rates)


def test_mmengine_compile_of_the_whole_train_step_trains_like_eager(straight_run):
    """mmengine's own ``compile`` config key: Dynamo traces the whole ``train_step``
    (forward, backward, the optimiser step and LUT's teacher update after it, running what it
    cannot trace eagerly), here with the ``aot_eager`` backend. A one-iteration run (one batch
    of 16: each new batch would retrace the step, as Dynamo guards on its metainfo strings,
    the learning rate and the momentum) is the eager run up to float rounding: the compiled
    code rounds differently in places, and the attention's key bias, whose gradient is zero
    but for rounding, takes an Adam step of the learning rate's size from that noise."""
    tmp, data_root, _, _ = straight_run
    options = [*_options(data_root, epochs=1), "train_dataloader.batch_size=16"]
    eager, compiled = tmp / "eager_1_epoch", tmp / "mmengine_compile"
    train_here(TOY_CFG, eager, cfg_options=options)
    train_here(TOY_CFG, compiled, cfg_options=[*options, "compile.backend=aot_eager"])
    diffs = state_dict_max_diff(
        load_checkpoint(compiled / "epoch_1.pth")["state_dict"],
        load_checkpoint(eager / "epoch_1.pth")["state_dict"],
    )
    key_bias = {k: v for k, v in diffs.items() if k.endswith("attn.qkv.bias")}
    assert key_bias and max(key_bias.values()) < 2e-4
    assert max(v for k, v in diffs.items() if k not in key_bias) < 2e-6


def test_photometric_on_device_trains_the_same_run(straight_run):
    """View 2's photometric transforms left to LUTDataPreprocessor (the workers only draw
    their parameters): the same 3-epoch run, weights equal to the bit."""
    tmp, data_root, straight, _ = straight_run
    config = tmp / "lut_toy_photometric_on_device.py"
    config.write_text(
        f"_base_ = {str(TOY_CFG)!r}\n"
        "from lut_plugin.datasets import lut_view_pipelines\n"
        "_, _, deferred = lut_view_pipelines(32, photometric_on_device=True)\n"
        "train_dataloader = dict(dataset=dict(pipeline=deferred))\n"
        "data_preprocessor = dict(type='LUTDataPreprocessor')\n"
    )
    work = tmp / "photometric_on_device"
    train_here(config, work, cfg_options=_options(data_root))
    logged = (next(work.glob("*/vis_data/config.py"))).read_text()
    assert "LUTPhotometricParams" in logged and "LUTDataPreprocessor" in logged
    assert_state_dicts_equal(
        load_checkpoint(work / "epoch_3.pth")["state_dict"],
        load_checkpoint(straight / "epoch_3.pth")["state_dict"],
    )


def test_toy_finetune_config_trains_from_the_student_and_tests(straight_run, tmp_path):
    """``lut_vit-tiny_finetune_toy_cpu.py``: strict load of the toy run's student encoder,
    one epoch of the Table D recipe at 32 px with validation, then ``tools/test.py`` on it."""
    _, data_root, straight, _ = straight_run
    config = ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_finetune_toy_cpu.py"
    checkpoint = straight / "epoch_3.pth"
    data = [
        f"{loader}.dataset.{key}"
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader")
        for key in (f"data_root={data_root}", "num_train=16", "num_val=4")
    ]
    options = [
        *data,
        "train_dataloader.batch_size=8",
        "train_cfg.max_epochs=1",
        "train_cfg.val_interval=1",
        f"model.backbone.init_cfg.checkpoint={checkpoint}",
    ]
    out = train_here(config, tmp_path / "ft", cfg_options=options)
    # 4 blocks x 12 tensors, cls token, position embedding, patch embedding weight and bias (the
    # final norm is left unused: the fine-tuned model pools with a new fc norm)
    assert f"Loaded 52 tensors from {checkpoint} (prefix 'backbone.')" in out
    val_top1 = float(out.rsplit("Epoch(val) [1][1/1]", 1)[1].split("accuracy/top1:")[1].split()[0])
    metrics = load_tool("test").main([str(config), str(tmp_path / "ft" / "epoch_1.pth"),
        "--work-dir", str(tmp_path / "test"), "--cfg-options", *data])  # fmt: skip
    assert f"{metrics['accuracy/top1']:.4f}" == f"{val_top1:.4f}"
