"""LUT through tools/train.py on the embedded toy data: exact resume, failure safety.

Runs train in this process; the crash is a subprocess. (test_lut_training_engine.py: the
runs that need no uninterrupted run to compare with.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT
from utils import (
    HELPERS,
    TOY_CFG,
    assert_same_training_state,
    assert_state_dicts_equal,
    load_checkpoint,
    load_tool,
    logged_losses,
    toy_options,
    train_cmd,
    train_here,
)

from lut_plugin.runtime import CheckpointMismatchError


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """One uninterrupted 3-epoch (6-iteration) run, checkpointing every epoch."""
    tmp = tmp_path_factory.mktemp("lut_train")
    data_root = tmp / "toy"
    work = tmp / "straight"
    out = train_here(TOY_CFG, work, cfg_options=toy_options(data_root))
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
    assert any(k.startswith("teacher.") for k in a["state_dict"])
    assert_same_training_state(a, b)


def test_killed_while_saving_resumes_from_last_complete_checkpoint(straight_run):
    """SIGKILL while epoch_2.pth is being written (max_keep_ckpts=1), then ``--resume``: the
    resumed run's weights, teacher, optimiser moments and the loss of every iteration after
    the resume equal the uninterrupted run's (epoch-based, a persistent worker)."""
    tmp, data_root, straight, _ = straight_run
    work, marker = tmp / "killed", tmp / "stalled"
    options = [*toy_options(data_root), "default_hooks.checkpoint.max_keep_ckpts=1"]
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
    assert "persistent_workers=True" in out and "num_workers=1" in out  # as configured
    _assert_same_run(
        load_checkpoint(work / "epoch_3.pth"), load_checkpoint(straight / "epoch_3.pth")
    )
    assert sorted(logged_losses(straight)) == [1, 2, 3, 4, 5, 6]
    resumed = logged_losses(work, last_run_only=True)
    assert resumed == {k: v for k, v in logged_losses(straight).items() if k > 2}
    # The interrupted partial write is cleaned up; older checkpoints are deleted after the new.
    assert sorted(p.name for p in work.iterdir() if p.suffix != ".py" and p.is_file()) == [
        "epoch_3.pth",
        "last_checkpoint",
    ]


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
                   cfg_options=[*toy_options(data_root), "model.w_bc=1e39"])  # fmt: skip
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
    options = [*toy_options(data_root), "model.projector.hid_channels=128",
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
        train_here(TOY_CFG, tmp_path / "work", cfg_options=toy_options(broken_root, epochs=1))
    assert victim.name in str(err.value) and message in str(err.value)


def test_momentum_in_checkpoint_log_reaches_one(straight_run):
    _, _, work, _ = straight_run
    logs = sorted(work.glob("*/vis_data/scalars.json"))
    assert logs
    records = map(json.loads, logs[0].read_text().splitlines())
    momenta = [r["teacher_momentum"] for r in records if "teacher_momentum" in r]
    assert momenta[0] == pytest.approx(0.996, abs=1e-6)  # iteration 0
    assert momenta[-1] == pytest.approx(1.0, abs=1e-9)  # iteration 5 = the last
    assert momenta == sorted(momenta)
    assert len(momenta) == 6


def test_compiled_run_trains_like_eager_and_resumes_exactly(straight_run):
    """``--compile`` for real (Dynamo + AOT autograd through the runner: training, the k-NN
    monitor's no-grad passes, checkpoints), with the ``aot_eager`` backend instead of
    inductor's C++ build: resumed after epoch 1 of the eager run, a compiled run ends exactly
    where the eager run ends (aot_eager runs the eager run's aten operators: the same weights
    and optimiser moments to the bit on the CPU)."""
    tmp, data_root, straight, _ = straight_run
    # tools/train.py appends the compile hook after the config's two custom hooks.
    options = [*toy_options(data_root), "custom_hooks.2.backend=aot_eager"]
    resumed = tmp / "compiled_resumed"
    resumed.mkdir()
    shutil.copy(straight / "epoch_1.pth", resumed / "epoch_1.pth")
    out = train_here(
        TOY_CFG, resumed, "--compile", "--resume", str(resumed / "epoch_1.pth"), cfg_options=options
    )
    # the toy's 4 student + 4 teacher encoder blocks and 2 decoder blocks
    assert "Compiled 10 transformer blocks: torch.compile(backend='aot_eager')" in out
    assert "resumed epoch: 1, iter: 2" in out
    _assert_same_run(
        load_checkpoint(resumed / "epoch_3.pth"), load_checkpoint(straight / "epoch_3.pth")
    )


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
    train_here(config, work, cfg_options=toy_options(data_root))
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
