"""The launchers (tools/train.py, tools/test.py, mmpretrain's own), --cpu, and the workarounds
of lut_plugin.runtime.compat."""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset
from utils import (
    CONFIGS,
    ROOT,
    TOY_CFG,
    assert_same_training_state,
    load_checkpoint,
    load_tool,
    state_dict_max_diff,
    toy_options,
    train_here,
    write_tiny_images,
    write_tiny_seg_dataset,
)

from lut_plugin.runtime import SAFE_GLOBALS, SafeResumeRunner, seed_everything
from lut_plugin.runtime.compat import strip_collate_scope

MAE_CFG = CONFIGS / "mae_tiny_resume.py"
SEG_CFG = CONFIGS / "seg_tiny_upernet.py"
CLS_CFG = CONFIGS / "cls_tiny_vit.py"


# ----------------------------------------------------------------------------------
# (a) checkpoints load with torch's weights-only loader
# ----------------------------------------------------------------------------------


class _ToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode="loss"):
        return dict(loss=self.fc(x).pow(2).mean())


class _ToyData(Dataset):
    metainfo = dict(classes=("a", "b"))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return dict(x=torch.full((2,), float(i)))


@pytest.fixture(scope="module")
def mmengine_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint written by mmengine's Runner (message hub, optimizer, schedulers)."""
    work_dir = tmp_path_factory.mktemp("toy_run")
    runner = Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_ToyData(),
            batch_size=2,
            sampler=dict(type="DefaultSampler", shuffle=False),
            collate_fn=dict(type="default_collate"),
        ),
        optim_wrapper=dict(optimizer=dict(type="AdamW", lr=0.01)),
        param_scheduler=[dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=2)],
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(logger=dict(type="LoggerHook", interval=1)),
        randomness=dict(seed=0),
    )
    runner.train()
    return work_dir / "epoch_1.pth"


@pytest.fixture
def saved_safe_globals():
    """Restore torch's allow-list after a test that clears it."""
    saved = list(torch.serialization.get_safe_globals())
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


def test_weights_only_load_of_mmengine_checkpoint(mmengine_checkpoint, saved_safe_globals):
    torch.serialization.clear_safe_globals()
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(mmengine_checkpoint)
    # Every global the checkpoint needs is one of ours, by its pickled name.
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(mmengine_checkpoint)))
    ours = {
        e[1] if isinstance(e, tuple) else f"{e.__module__}.{e.__qualname__}" for e in SAFE_GLOBALS
    }
    assert "mmengine.logging.history_buffer.HistoryBuffer" in needed
    assert needed <= ours, needed - ours

    torch.serialization.add_safe_globals(SAFE_GLOBALS)  # what `import lut_plugin` does
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(mmengine_checkpoint)) == []
    ckpt = torch.load(mmengine_checkpoint)  # weights_only=True is torch's default here
    trusted = torch.load(mmengine_checkpoint, weights_only=False)
    assert set(ckpt) == set(trusted) >= {"meta", "state_dict", "message_hub", "optimizer"}
    for key, value in trusted["state_dict"].items():
        assert torch.equal(ckpt["state_dict"][key], value)
    loss = ckpt["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(loss, HistoryBuffer)
    ref = trusted["message_hub"]["log_scalars"]["train/loss"]
    assert loss.mean() == ref.mean() and loss.current() == ref.current()
    assert loss.statistics("max") == ref.max()
    assert ckpt["meta"]["epoch"] == 1 and ckpt["meta"]["seed"] == 0


class _GetattrOther:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, "__init__"))


class _System:
    def __reduce__(self):
        return (os.system, ("echo unsafe",))


@pytest.mark.parametrize("payload", [_GetattrOther(), _System()])
def test_weights_only_load_still_refuses_other_globals(payload):
    buffer = io.BytesIO()
    torch.save({"x": payload}, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(buffer)


# ----------------------------------------------------------------------------------
# (b) _scope_ in collate_fn of configs inheriting mmpretrain:: bases (compat)
# ----------------------------------------------------------------------------------


def test_strip_collate_scope_makes_the_dataloader_work(tmp_path):
    from mmengine.registry import init_default_scope

    images = write_tiny_images(tmp_path / "imgs", n=4)
    cfg = Config.fromfile(MAE_CFG)
    cfg.train_dataloader.dataset.data_root = str(images)
    assert cfg.train_dataloader.collate_fn == {"type": "default_collate", "_scope_": "mmpretrain"}
    init_default_scope("mmpretrain")
    with pytest.raises(TypeError, match="_scope_"):
        next(iter(Runner.build_dataloader(cfg.train_dataloader.to_dict())))
    strip_collate_scope(cfg.train_dataloader)
    assert cfg.train_dataloader.collate_fn == {"type": "default_collate"}
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader.to_dict())))
    assert batch["inputs"].shape == (4, 3, 32, 32)


# ----------------------------------------------------------------------------------
# (c) --cpu: a GPU config on the CPU, each change printed
# ----------------------------------------------------------------------------------


def test_cpu_flag_changes_a_gpu_config_and_prints_each_change(capsys):
    train = load_tool("train")
    cfg = Config.fromfile(MAE_CFG)
    cfg.test_cfg = dict(fp16=True)
    cfg.optim_wrapper.dtype = "bfloat16"
    cfg = train.merge_args(cfg, train.parse_args([str(MAE_CFG), "--amp"]))
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"  # without --cpu nothing changes
    assert capsys.readouterr().out == ""
    cfg = train.merge_args(cfg, train.parse_args([str(MAE_CFG), "--cpu"]))
    assert cfg.optim_wrapper.type == "OptimWrapper" and cfg.test_cfg.fp16 is False
    assert "loss_scale" not in cfg.optim_wrapper and "dtype" not in cfg.optim_wrapper
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(2.4e-3)  # the rest of the recipe
    assert capsys.readouterr().out.splitlines() == [
        "--cpu: optim_wrapper: AmpOptimWrapper -> OptimWrapper (float32)",
        "--cpu: test_cfg.fp16 -> False",
    ]
    # one wrapper per optimiser
    many = Config(dict(optim_wrapper=dict(constructor="Custom",
        generator=dict(type="AmpOptimWrapper", loss_scale=512.0, optimizer=dict()),
        discriminator=dict(type="mmengine.AmpOptimWrapper", optimizer=dict()))))  # fmt: skip
    train.cpu_config(many)
    assert many.optim_wrapper.generator == {"type": "OptimWrapper", "optimizer": {}}
    assert many.optim_wrapper.discriminator.type == "OptimWrapper"
    # distributed: gloo, DDP without device_ids, BN for SyncBN (mmseg's and LUT's heads)
    for config, n_bn in [(SEG_CFG, 2), (ROOT / "configs/mmpretrain/lut_vitb_400e.py", 2)]:
        cfg = Config.fromfile(config)
        cfg.launcher = "pytorch"
        assert train.cpu_config(cfg)[-1].endswith(f"{n_bn} SyncBN config(s) -> BN")
        assert cfg.env_cfg.dist_cfg.backend == "gloo" and cfg.model_wrapper_cfg.device_ids is None
        assert "SyncBN" not in str(cfg.model) and "syncbn" not in str(cfg.model)
        assert cfg.custom_hooks[-1] == dict(type="SyncBuffersHook")


# ----------------------------------------------------------------------------------
# (d) missing checkpoint files
# ----------------------------------------------------------------------------------


def test_missing_resume_and_test_checkpoint_are_named(tmp_path):
    images = write_tiny_images(tmp_path / "imgs", n=4)
    opts = ["--cfg-options", f"train_dataloader.dataset.data_root={images}"]
    missing = tmp_path / "nope" / "epoch_7.pth"
    work = ["--work-dir", str(tmp_path / "work"), "--cpu"]
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_tool("train").main([str(MAE_CFG), *work, "--resume", str(missing), *opts])
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_tool("train").main([str(MAE_CFG), *work, "--resume", str(tmp_path), *opts])
    for i, name in enumerate(("cat", "dog")):
        write_tiny_images(tmp_path / "cls" / name, n=2, seed=i)
    cls = [f"{k}_dataloader.dataset.data_root={tmp_path / 'cls'}" for k in ("val", "test")]
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_tool("test").main([str(CLS_CFG), str(missing), *work, "--cfg-options", *cls])
    with pytest.raises(ValueError, match=r"has no test_dataloader, test_cfg, test_evaluator"):
        load_tool("test").main([str(MAE_CFG), str(missing), *work])  # a pre-training config
    train = load_tool("train")
    cfg = train.merge_args(Config.fromfile(MAE_CFG), train.parse_args(["c.py", "--resume"]))
    assert cfg.resume is True and cfg.load_from is None


# ----------------------------------------------------------------------------------
# the runtime is opt-in: a config that includes it, one that does not
# ----------------------------------------------------------------------------------


def test_the_runtime_is_what_a_config_includes(tmp_path):
    """A config with ``reliability_runtime.py`` gets SafeResumeRunner, which logs the hooks and
    sampler it uses; the same config without it runs on mmengine's Runner, unchanged."""
    train = load_tool("train")
    args = train.parse_args([str(SEG_CFG), "--work-dir", str(tmp_path)])
    cfg = train.merge_args(Config.fromfile(SEG_CFG), args)
    assert cfg.runner_type == "SafeResumeRunner"
    runner = train.build_runner(cfg)
    assert type(runner) is SafeResumeRunner
    names = [type(h).__name__ for h in runner.hooks]
    assert {"AtomicCheckpointHook", "StepSeedHook", "FiniteCheckHook"} <= set(names)
    assert "CheckpointHook" not in names
    sampler = runner._train_dataloader["sampler"]
    assert sampler["type"] == "SeededSampler" and sampler["sampler"]["type"] == "InfiniteSampler"
    out = next(Path(runner.log_dir).glob("*.log")).read_text()
    assert ("SafeResumeRunner: checkpoints by AtomicCheckpointHook; training samples seeded by "
            "position (SeededSampler around InfiniteSampler); StepSeedHook added; "
            "FiniteCheckHook added.") in out  # fmt: skip
    cfg.pop("runner_type", None)  # (mmengine pops it when it builds the runner)
    plain = train.build_runner(cfg)
    assert type(plain) is Runner
    names = [type(h).__name__ for h in plain.hooks]
    assert "CheckpointHook" in names and "StepSeedHook" not in names
    assert plain._train_dataloader["sampler"]["type"] == "InfiniteSampler"


def test_seed_everything_depends_only_on_the_key():
    import random

    import numpy as np

    def draw():
        return torch.rand(3).tolist(), np.random.rand(), random.random()

    seed_everything(0, 1, 5)
    a = draw()
    torch.rand(100)  # history does not matter
    seed_everything(0, 1, 5)
    assert draw() == a
    for other in [(0, 1, 6), (1, 1, 5), (0, 0, 5), (0, 1, 5, 0)]:
        seed_everything(*other)
        assert draw()[0] != a[0]


# ----------------------------------------------------------------------------------
# end to end: upstream MAE config with the runtime, resume == uninterrupted
# ----------------------------------------------------------------------------------


def test_train_resume_matches_uninterrupted_run(tmp_path):
    """Upstream MAE, epoch-based, 2 persistent dataloader workers: a 1-epoch run resumed to 2
    epochs ends bit-for-bit where a 2-epoch run ends (and is warned about the longer run)."""
    images = write_tiny_images(tmp_path / "images", n=8)
    workers = ["train_dataloader.num_workers=2", "train_dataloader.persistent_workers=True"]
    data = [f"train_dataloader.dataset.data_root={images}", *workers]
    first, straight = tmp_path / "first", tmp_path / "straight"
    train_here(MAE_CFG, straight, "--cpu", cfg_options=data)  # the config's 2 epochs
    train_here(MAE_CFG, first, "--cpu", cfg_options=[*data, "train_cfg.max_epochs=1"])
    assert (first / "epoch_1.pth").is_file() and not (first / "epoch_2.pth").exists()
    out = train_here(
        MAE_CFG, first, "--cpu", "--resume", str(first / "epoch_1.pth"), cfg_options=data
    )
    assert "resumed epoch: 1, iter: 2" in out
    assert "written by a run of max_epochs=1, with max_epochs=2" in out
    resumed = load_checkpoint(first / "epoch_2.pth")
    uninterrupted = load_checkpoint(straight / "epoch_2.pth")
    assert resumed["meta"]["iter"] == 4
    assert_same_training_state(resumed, uninterrupted)
    moved = state_dict_max_diff(
        load_checkpoint(first / "epoch_1.pth")["state_dict"], resumed["state_dict"]
    )
    assert max(moved.values()) > 1e-4 and len(resumed["state_dict"]) > 20


def test_mmpretrains_own_launcher_trains_the_toy_config(tmp_path):
    """mmpretrain's ``tools/train.py`` (as shipped, via ``mim``'s copy) trains the CPU config:
    the runtime comes with the config, not with this project's launcher."""
    import mmpretrain

    launcher = Path(mmpretrain.__file__).parent / ".mim" / "tools" / "train.py"
    opts = toy_options(tmp_path / "toy", epochs=1)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, str(launcher), str(TOY_CFG), "--work-dir", str(tmp_path / "work"),
         "--cfg-options", *opts], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    log = proc.stdout + proc.stderr
    assert "SafeResumeRunner: checkpoints by AtomicCheckpointHook" in log
    assert "Epoch(train) [1][2/2]" in log and "loss_bc:" in log
    assert load_checkpoint(tmp_path / "work" / "epoch_1.pth")["meta"]["iter"] == 2


def test_seg_config_trains_and_tests(tmp_path):
    """An mmseg config (scope ``mmseg``, mmseg's own dataloader defaults) through both
    launchers, in this process; ``tools/test.py`` reports mIoU for the checkpoint."""
    data_root = write_tiny_seg_dataset(tmp_path / "ade", n_train=4, n_val=2)
    opts = [f"{k}_dataloader.dataset.data_root={data_root}" for k in ("train", "val", "test")]
    work = tmp_path / "seg"
    load_tool("train").main([str(SEG_CFG), "--work-dir", str(work), "--cfg-options", *opts])
    ckpt = work / "iter_2.pth"
    assert ckpt.is_file()
    assert load_checkpoint(ckpt)["meta"]["iter"] == 2

    metrics = load_tool("test").main(
        [str(SEG_CFG), str(ckpt), "--work-dir", str(work), "--cfg-options", *opts]
    )
    assert set(metrics) >= {"aAcc", "mIoU", "mAcc"}
    assert math.isfinite(metrics["mIoU"]) and 0.0 <= metrics["mIoU"] <= 100.0


def test_classifier_config_trains_and_tests_in_process(tmp_path):
    """An mmpretrain classification config (val/test dataloaders with the ``_scope_``d
    collate_fn) through both launchers; ``--out`` dumps predictions or metrics."""
    import pickle

    import mmengine

    for i, name in enumerate(("cat", "dog")):
        write_tiny_images(tmp_path / "data" / name, n=4, seed=i)
    opts = [
        f"{k}_dataloader.dataset.data_root={tmp_path / 'data'}" for k in ("train", "val", "test")
    ]
    work = tmp_path / "cls"
    load_tool("train").main([str(CLS_CFG), "--work-dir", str(work), "--cfg-options", *opts])
    ckpt = work / "epoch_1.pth"
    assert ckpt.is_file()

    test = load_tool("test")
    preds = tmp_path / "preds.pkl"
    metrics = test.main(
        [
            str(CLS_CFG),
            str(ckpt),
            "--work-dir",
            str(work),
            "--out",
            str(preds),
            "--cfg-options",
            *opts,
        ]
    )
    top1 = metrics["accuracy/top1"]
    assert 0.0 <= top1 <= 100.0
    with open(preds, "rb") as f:
        dumped = pickle.load(f)
    assert len(dumped) == 8 and {"pred_label", "gt_label"} <= set(dumped[0])
    correct = sum(int(d["pred_label"][0]) == int(d["gt_label"][0]) for d in dumped)
    assert top1 == pytest.approx(100.0 * correct / 8)

    out = tmp_path / "metrics.json"
    again = test.main(
        [
            str(CLS_CFG),
            str(ckpt),
            "--out",
            str(out),
            "--out-item",
            "metrics",
            "--amp",
            "--cpu",
            "--work-dir",
            str(work),
            "--cfg-options",
            *opts,
        ]
    )
    assert mmengine.load(str(out)) == again == metrics


def test_tool_parsers_accept_upstream_flags():
    train = load_tool("train").parse_args(
        [
            "c.py",
            "--work-dir",
            "w",
            "--resume",
            "--amp",
            "--auto-scale-lr",
            "--launcher",
            "pytorch",
            "--cfg-options",
            "a=1",
            "--local-rank",
            "0",
        ]
    )
    assert (train.resume, train.amp, train.auto_scale_lr, train.launcher) == (
        "auto",
        True,
        True,
        "pytorch",
    )
    assert train.cfg_options == {"a": 1}
    test = load_tool("test").parse_args(
        ["c.py", "k.pth", "--out", "r.json", "--out-item", "metrics"]
    )
    assert (test.checkpoint, test.out, test.out_item) == ("k.pth", "r.json", "metrics")


@pytest.mark.parametrize(
    ("script", "fourth", "tool"),
    [("slurm_train.sh", "wd", "train.py"), ("slurm_test.sh", "ckpt.pth", "test.py")],
)
def test_slurm_launchers_check_their_arguments_then_call_srun(tmp_path, script, fourth, tool):
    """A missing argument stops with the usage (an empty WORK_DIR would train into the current
    folder); otherwise one srun task per GPU runs the tool with mmengine's slurm launcher."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/sh\necho "srun $*"\n')
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GPUS": "16"}
    path = str(ROOT / "tools" / script)

    def run(*args):
        return subprocess.run(["bash", path, *args], capture_output=True, text=True, env=env)

    for args in (("p", "job", "cfg.py"), ("p", "job", "cfg.py", "")):
        bad = run(*args)
        assert bad.returncode == 2 and "usage:" in bad.stderr, bad.stderr
    ok = run("p", "job", "cfg.py", fourth, "--cfg-options", "a=1")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("srun -p p --job-name=job --gres=gpu:8 --ntasks=16 ")
    fourth_arg = f"--work-dir={fourth}" if tool == "train.py" else fourth
    assert f"/tools/{tool} cfg.py {fourth_arg} --launcher=slurm --cfg-options a=1" in ok.stdout
