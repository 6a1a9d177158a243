"""The launchers (tools/train.py, tools/test.py) and the config fixes of LUTRunner."""

from __future__ import annotations

import importlib.util
import io
import math
import os
import re
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from utils import (  # noqa: E402
    CONFIGS,
    ROOT,
    assert_state_dicts_equal,
    finish_tool,
    load_checkpoint,
    run_dist_train,
    run_train,
    start_tool,
    state_dict_max_diff,
    train_cmd,
    write_tiny_images,
    write_tiny_seg_dataset,
)

from lut_plugin.checkpoint import SAFE_GLOBALS  # noqa: E402
from lut_plugin.mmpretrain.engine import adapt_config, seed_everything  # noqa: E402

MAE_CFG = CONFIGS / "mae_tiny_resume.py"
SEG_CFG = CONFIGS / "seg_tiny_upernet.py"
CLS_CFG = CONFIGS / "cls_tiny_vit.py"


def _train_args(config: Path | str = MAE_CFG, **kw) -> Namespace:
    args = dict(
        config=str(config),
        work_dir=None,
        resume=None,
        amp=False,
        no_validate=False,
        auto_scale_lr=False,
        no_pin_memory=False,
        no_persistent_workers=False,
        unsafe_load=False,
        compile=False,
        cfg_options=None,
        launcher="none",
    )
    args.update(kw)
    return Namespace(**args)


def _test_args(checkpoint: str, config: Path | str = MAE_CFG, **kw) -> Namespace:
    args = dict(
        config=str(config),
        checkpoint=checkpoint,
        work_dir=None,
        out=None,
        show=False,
        show_dir=None,
        wait_time=2,
        interval=1,
        amp=False,
        tta=False,
        no_pin_memory=False,
        unsafe_load=False,
        cfg_options=None,
        launcher="none",
    )
    args.update(kw)
    return Namespace(**args)


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
# (b) _scope_ in collate_fn of configs inheriting mmpretrain:: bases
# ----------------------------------------------------------------------------------


def test_strip_collate_fn_scope_makes_the_dataloader_work(tmp_path):
    from mmengine.registry import init_default_scope

    images = write_tiny_images(tmp_path / "imgs", n=4)
    cfg = Config.fromfile(MAE_CFG)
    cfg.train_dataloader.dataset.data_root = str(images)
    assert cfg.train_dataloader.collate_fn == {"type": "default_collate", "_scope_": "mmpretrain"}
    init_default_scope("mmpretrain")

    with pytest.raises(TypeError, match="_scope_"):
        next(iter(Runner.build_dataloader(cfg.train_dataloader.to_dict())))

    adapt_config(cfg)
    assert cfg.train_dataloader.collate_fn == {"type": "default_collate"}
    loader = cfg.train_dataloader.to_dict()
    loader["sampler"] = loader["sampler"]["sampler"]  # LUTSeededSampler needs LUTRunner
    batch = next(iter(Runner.build_dataloader(loader)))
    assert batch["inputs"].shape == (4, 3, 32, 32)


# ----------------------------------------------------------------------------------
# (c) AMP without a GPU
# ----------------------------------------------------------------------------------


def test_amp_fallback_replaces_amp_wrapper_without_gpu():
    from mmengine.optim import OptimWrapper, build_optim_wrapper

    cfg = Config.fromfile(MAE_CFG)
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.optim_wrapper.loss_scale == "dynamic"
    cfg.optim_wrapper.dtype = "bfloat16"
    cfg.test_cfg = dict(fp16=True)

    adapt_config(cfg, has_gpu=True)
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"

    adapt_config(cfg, has_gpu=False)
    assert cfg.optim_wrapper.type == "OptimWrapper"
    assert "loss_scale" not in cfg.optim_wrapper and "dtype" not in cfg.optim_wrapper
    assert cfg.test_cfg.fp16 is False
    # The rest of the recipe is kept, and it builds on this CPU.
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(2.4e-3)
    wrapper = build_optim_wrapper(nn.Linear(2, 2), cfg.optim_wrapper)
    assert type(wrapper) is OptimWrapper
    assert type(wrapper.optimizer).__name__ == "AdamW"


def test_amp_fallback_multiple_optim_wrappers():
    cfg = Config(
        dict(
            optim_wrapper=dict(
                constructor="Custom",
                generator=dict(type="AmpOptimWrapper", loss_scale=512.0, optimizer=dict()),
                discriminator=dict(type="mmengine.AmpOptimWrapper", optimizer=dict()),
            )
        )
    )
    adapt_config(cfg, has_gpu=False)
    assert cfg.optim_wrapper.generator == {"type": "OptimWrapper", "optimizer": {}}
    assert cfg.optim_wrapper.discriminator.type == "OptimWrapper"
    assert cfg.optim_wrapper.constructor == "Custom"


def test_amp_flag_then_fallback():
    cfg = Config.fromfile(MAE_CFG)
    cfg.optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1))
    _load_tool("train").merge_args(cfg, _train_args(amp=True))
    assert cfg.optim_wrapper.type == "AmpOptimWrapper" and cfg.optim_wrapper.loss_scale == "dynamic"
    adapt_config(cfg, has_gpu=False)
    assert cfg.optim_wrapper == {"type": "OptimWrapper", "optimizer": {"type": "SGD", "lr": 0.1}}


def test_dist_fallback_without_gpu():
    cfg = Config.fromfile(SEG_CFG)
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"
    adapt_config(cfg, has_gpu=False)  # launcher none: mmengine reverts SyncBN itself
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"
    cfg.launcher = "pytorch"
    adapt_config(cfg, has_gpu=True)
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"
    assert cfg.env_cfg.dist_cfg.backend == "nccl"
    adapt_config(cfg, has_gpu=False)
    assert cfg.env_cfg.dist_cfg.backend == "gloo"
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model.decode_head.norm_cfg.type == "BN"
    assert cfg.model.auxiliary_head.norm_cfg.type == "BN"


def test_dist_fallback_without_gpu_reverts_lut_heads_syncbn():
    cfg = Config.fromfile(str(ROOT / "configs" / "mmpretrain" / "lut_vitb_400e.py"))
    assert cfg.model.projector.norm == cfg.model.predictor.norm == "syncbn"
    cfg.launcher = "pytorch"
    adapt_config(cfg, has_gpu=False)
    assert cfg.model.projector.norm == cfg.model.predictor.norm == "bn"


def test_pinned_memory_only_with_a_gpu():
    cfg = Config.fromfile(str(ROOT / "configs" / "mmpretrain" / "lut_vitb_400e.py"))
    cfg.val_dataloader = dict(pin_memory=True, num_workers=2)
    adapt_config(cfg, has_gpu=True)
    assert cfg.train_dataloader.pin_memory is True and cfg.val_dataloader.pin_memory is True
    adapt_config(cfg, has_gpu=False)
    assert cfg.train_dataloader.pin_memory is False and cfg.val_dataloader.pin_memory is False
    assert cfg.train_dataloader.num_workers == 12  # the rest of the loader is kept


# ----------------------------------------------------------------------------------
# (d) missing checkpoint files
# ----------------------------------------------------------------------------------


def test_missing_resume_and_test_checkpoint_are_named(tmp_path):
    images = write_tiny_images(tmp_path / "imgs", n=4)
    opts = ["--cfg-options", f"train_dataloader.dataset.data_root={images}"]
    missing = tmp_path / "nope" / "epoch_7.pth"
    work = ["--work-dir", str(tmp_path / "work")]
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        _load_tool("train").main([str(MAE_CFG), *work, "--resume", str(missing), *opts])
    with pytest.raises(FileNotFoundError, match="is a directory"):
        _load_tool("train").main([str(MAE_CFG), *work, "--resume", str(tmp_path), *opts])
    for i, name in enumerate(("cat", "dog")):
        write_tiny_images(tmp_path / "cls" / name, n=2, seed=i)
    cls = [f"{k}_dataloader.dataset.data_root={tmp_path / 'cls'}" for k in ("val", "test")]
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        _load_tool("test").main([str(CLS_CFG), str(missing), *work, "--cfg-options", *cls])
    with pytest.raises(ValueError, match=r"has no test_dataloader, test_cfg, test_evaluator"):
        _load_tool("test").main([str(MAE_CFG), str(missing), *work])  # a pre-training config
    cfg = _load_tool("train").merge_args(Config.fromfile(MAE_CFG), _train_args(resume="auto"))
    assert cfg.resume is True and cfg.load_from is None


# ----------------------------------------------------------------------------------
# launcher config handling
# ----------------------------------------------------------------------------------


def test_merge_args_follows_the_scope():
    merge_args = _load_tool("train").merge_args
    cfg = merge_args(
        Config.fromfile(MAE_CFG),
        _train_args(
            work_dir="wd", unsafe_load=True, cfg_options={"train_dataloader.batch_size": 2}
        ),
    )
    assert cfg.work_dir == "wd" and cfg.launcher == "none" and cfg.unsafe_load is True
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.pin_memory is True  # mmpretrain launcher default

    seg = merge_args(Config.fromfile(SEG_CFG), _train_args(SEG_CFG, no_pin_memory=True))
    assert seg.work_dir == os.path.join("./work_dirs", "seg_tiny_upernet")
    assert "collate_fn" not in seg.train_dataloader  # mmseg keeps mmengine's pseudo_collate
    assert seg.train_dataloader.pin_memory is False
    assert "unsafe_load" not in seg


def test_adapt_config_adds_the_runtime_guarantees():
    """Crash-safe checkpoints, seeded sampling and the non-finite check for any config,
    once."""
    seg = adapt_config(Config.fromfile(SEG_CFG))
    assert seg.default_hooks.checkpoint.type == "LUTCheckpointHook"
    sampler = seg.train_dataloader.sampler
    assert sampler.type == "LUTSeededSampler" and set(sampler) == {"type", "sampler"}
    assert sampler.sampler.type == "InfiniteSampler" and sampler.sampler.shuffle is True
    assert [h["type"] for h in seg.custom_hooks] == ["LUTStepSeedHook", "LUTFiniteCheckHook"]
    before = seg.to_dict()
    assert adapt_config(seg).to_dict() == before
    cfg = Config(dict(train_dataloader=dict(sampler=dict(type="DefaultSampler"))))
    assert adapt_config(cfg).default_hooks.checkpoint == {
        "type": "LUTCheckpointHook",
        "interval": 1,
    }
    off = adapt_config(Config(dict(default_hooks=dict(checkpoint=None))))
    assert off.default_hooks.checkpoint is None and "custom_hooks" not in off


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
# end to end: upstream MAE config through tools/train.py, resume == uninterrupted
# ----------------------------------------------------------------------------------


def test_train_resume_matches_uninterrupted_run(tmp_path):
    """Upstream MAE, epoch-based, 2 persistent dataloader workers: a 2-epoch run resumed to 3
    epochs ends bit-for-bit where a 3-epoch run ends (and is warned about the longer run)."""
    images = write_tiny_images(tmp_path / "images", n=8)
    workers = ["train_dataloader.num_workers=2", "train_dataloader.persistent_workers=True"]
    data = [f"train_dataloader.dataset.data_root={images}", *workers]
    three_epochs = [*data, "train_cfg.max_epochs=3"]
    first, straight = tmp_path / "first", tmp_path / "straight"

    # The uninterrupted 3-epoch run goes on beside the 2-epoch run and its resumption.
    straight_proc = start_tool("train.py", *train_cmd(MAE_CFG, straight, cfg_options=three_epochs))
    out = run_train(MAE_CFG, first, cfg_options=data).stdout  # epochs 1-2, 4 iterations
    assert "AmpOptimWrapper replaced by OptimWrapper" in out
    assert (first / "epoch_1.pth").is_file() and (first / "epoch_2.pth").is_file()
    out = run_train(
        MAE_CFG, first, "--resume", str(first / "epoch_2.pth"), cfg_options=three_epochs
    ).stdout
    assert "resumed epoch: 2, iter: 4" in out
    assert "written by a run of max_epochs=2, with max_epochs=3" in out
    finish_tool(straight_proc)

    resumed = load_checkpoint(first / "epoch_3.pth")
    uninterrupted = load_checkpoint(straight / "epoch_3.pth")
    assert resumed["meta"]["iter"] == uninterrupted["meta"]["iter"] == 6
    assert_state_dicts_equal(resumed["state_dict"], uninterrupted["state_dict"])
    # Optimizer moments too, and training really moved the weights after the resume.
    for a, b in zip(
        resumed["optimizer"]["state"].values(), uninterrupted["optimizer"]["state"].values()
    ):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    moved = state_dict_max_diff(
        load_checkpoint(first / "epoch_2.pth")["state_dict"], resumed["state_dict"]
    )
    assert max(moved.values()) > 1e-4
    assert len(resumed["state_dict"]) > 20


def test_seg_config_trains_and_tests(tmp_path):
    """An mmseg config (scope ``mmseg``, mmseg's own dataloader defaults) through both
    launchers, in this process; ``tools/test.py`` reports mIoU for the checkpoint."""
    data_root = write_tiny_seg_dataset(tmp_path / "ade", n_train=4, n_val=2)
    opts = [f"{k}_dataloader.dataset.data_root={data_root}" for k in ("train", "val", "test")]
    work = tmp_path / "seg"
    _load_tool("train").main([str(SEG_CFG), "--work-dir", str(work), "--cfg-options", *opts])
    ckpt = work / "iter_2.pth"
    assert ckpt.is_file()
    assert load_checkpoint(ckpt)["meta"]["iter"] == 2

    metrics = _load_tool("test").main(
        [str(SEG_CFG), str(ckpt), "--work-dir", str(work), "--cfg-options", *opts]
    )
    assert set(metrics) >= {"aAcc", "mIoU", "mAcc"}
    assert math.isfinite(metrics["mIoU"]) and 0.0 <= metrics["mIoU"] <= 100.0


def test_dist_train_sh_two_cpu_processes(tmp_path):
    """tools/dist_train.sh (torchrun, --launcher pytorch) with 2 processes on gloo."""
    images = write_tiny_images(tmp_path / "images", n=8)
    work = tmp_path / "dist"
    proc = run_dist_train(
        MAE_CFG,
        2,
        work,
        [f"train_dataloader.dataset.data_root={images}", "train_cfg.max_epochs=1"],
    )
    assert "Distributed training: True" in proc.stdout
    assert "distributed backend gloo" in proc.stdout
    # 8 images over 2 processes with batch 4: one iteration per epoch.
    assert "Epoch(train) [1][1/1]" in proc.stdout
    assert (work / "epoch_1.pth").is_file()
    assert len(load_checkpoint(work / "epoch_1.pth")["state_dict"]) > 20


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    _load_tool("train").main([str(CLS_CFG), "--work-dir", str(work), "--cfg-options", *opts])
    ckpt = work / "epoch_1.pth"
    assert ckpt.is_file()

    test = _load_tool("test")
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
            "--work-dir",
            str(work),
            "--cfg-options",
            *opts,
        ]
    )
    assert mmengine.load(str(out)) == again == metrics


def test_tool_parsers_accept_upstream_flags():
    train = _load_tool("train").parse_args(
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
    test = _load_tool("test").parse_args(["c.py", "k.pth", "--out", "r.pkl", "--show-dir", "s"])
    assert (test.checkpoint, test.out, test.show_dir) == ("k.pth", "r.pkl", "s")


@pytest.mark.parametrize(
    ("script", "fourth", "tool"),
    [("slurm_train.sh", "wd", "train.py"), ("slurm_test.sh", "ckpt.pth", "test.py")],
)
def test_slurm_launchers_check_their_arguments_then_call_srun(tmp_path, script, fourth, tool):
    """A missing argument stops with the usage (an empty WORK_DIR would train into the current
    folder); otherwise one srun task per GPU runs the tool with mmengine's slurm launcher."""
    import subprocess

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
