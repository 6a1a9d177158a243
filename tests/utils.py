"""Plain helpers for the tests: running the launchers in ``tools/``, comparing state dicts,
recording host synchronisations.

Import as ``from utils import ...`` (pytest puts ``tests/`` on ``sys.path``; do not use
``tests.utils``: mmsegmentation's wheel installs a top-level ``tests`` package).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

ROOT = Path(__file__).resolve().parents[1]


TOY_CFG = ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_toy_cpu.py"
HELPERS = ROOT / "tests" / "data" / "helpers"


def toy_options(data_root: str | os.PathLike, epochs: int = 3) -> list[str]:
    """``--cfg-options`` of the toy runs: 16 images / batch 8 = 2 iterations per epoch, a
    checkpoint every epoch; the dataloader runs as configured (a persistent worker)."""
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


TOOLS = ROOT / "tools"
CONFIGS = Path(__file__).resolve().parent / "data" / "configs"


def write_tiny_images(folder: str | os.PathLike, n: int = 8, size: int = 32, seed: int = 0) -> Path:
    """Write ``n`` random RGB PNGs (``size`` x ``size``) for ``CustomDataset``.

    Args:
        folder: Directory to create (``CustomDataset(data_root=folder, with_label=False)``
            reads every image under it).
        n: Number of images.
        size: Side length in pixels.
        seed: Seed of the pixel values.

    Returns:
        Path: ``folder``.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        # Smooth structure plus noise, so that reconstruction has something to learn.
        base = (np.sin(xx / (2 + i % 5)) + np.cos(yy / (3 + i % 3)))[..., None] * 60 + 128
        img = base + rng.normal(0, 20, (size, size, 3)) + rng.integers(-40, 40, 3)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"img_{i:03d}.png")
    return folder


def write_tiny_seg_dataset(
    root: str | os.PathLike,
    n_train: int = 4,
    n_val: int = 2,
    size: int = 32,
    num_classes: int = 4,
    seed: int = 0,
) -> Path:
    """Write an ADE20K-layout folder: ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png`` (label 0 = ignore after
    ``reduce_zero_label``, labels 1..num_classes are classes 0..num_classes-1).

    Args:
        root: Dataset root (``ADE20KDataset(data_root=root)``).
        n_train: Training images.
        n_val: Validation images.
        size: Side length in pixels.
        num_classes: Number of foreground labels drawn.
        seed: Seed.

    Returns:
        Path: ``root``.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 255, (num_classes + 1, 3))
    for split, n in (("training", n_train), ("validation", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = np.zeros((size, size), np.uint8)
            step = size // 4
            for by in range(0, size, step):
                for bx in range(0, size, step):
                    label[by : by + step, bx : bx + step] = rng.integers(0, num_classes + 1)
            img = palette[label] + rng.normal(0, 10, (size, size, 3))
            name = f"ADE_{split}_{i:08d}"
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                root / "images" / split / f"{name}.jpg"
            )
            Image.fromarray(label).save(root / "annotations" / split / f"{name}.png")
    return root


def train_cmd(
    config: str | os.PathLike,
    work_dir: str | os.PathLike,
    *args: str,
    cfg_options: Sequence[str] = (),
) -> list[str]:
    """The command line of ``tools/train.py CONFIG --work-dir DIR [ARGS] [--cfg-options]``.

    Args:
        config: Config file.
        work_dir: Work directory.
        *args: More arguments (``'--resume'``, path, ...).
        cfg_options: ``key=value`` strings for ``--cfg-options``.

    Returns:
        list[str]: The arguments of ``tools/train.py`` (its ``main`` or a process).
    """
    cmd = [str(config), "--work-dir", str(work_dir), *args]
    if cfg_options:
        cmd += ["--cfg-options", *cfg_options]
    return cmd


def run_dist_train(
    config: str | os.PathLike,
    gpus: int,
    work_dir: str | os.PathLike,
    cfg_options: Sequence[str] = (),
    port_base: int = 29500,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """``tools/dist_train.sh CONFIG GPUS --work-dir DIR`` on the CPU (torchrun, gloo).

    Args:
        config: Config file.
        gpus: Number of processes.
        work_dir: Work directory.
        cfg_options: ``key=value`` strings for ``--cfg-options``.
        port_base: Base of the rendezvous port (the pid is added, to avoid clashes).
        args: More ``train.py`` arguments (``'--cpu'``).

    Returns:
        subprocess.CompletedProcess: With ``stdout`` (stderr merged into it); asserts
        that the launch succeeded.
    """
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env["PORT"] = str(port_base + os.getpid() % 1000)
    _, *train_args = train_cmd(config, work_dir, *args, cfg_options=cfg_options)
    cmd = ["bash", str(TOOLS / "dist_train.sh"), str(config), str(gpus), *train_args]
    proc = subprocess.run(
        cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc


def load_tool(name: str):
    """``tools/<name>.py`` as a module (e.g. ``load_tool('train').main([...])``).

    Args:
        name: ``'train'``, ``'test'``, ``'convert_checkpoint'``, ``'analysis/...'``.
    """
    path = TOOLS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_tool_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_RUNS = itertools.count()


def train_here(
    config: str | os.PathLike, work_dir: str | os.PathLike, *args: str, cfg_options=()
) -> str:
    """``tools/train.py`` in this process; returns the run's log.

    Each run gets its own experiment name: mmengine keys its logger, message hub and
    visualizer by that name (the config name and the second it started, by default).

    Args:
        config: Config file.
        work_dir: Work directory.
        *args: More command-line arguments (``'--resume'``, path, ...).
        cfg_options: ``key=value`` strings for ``--cfg-options``.

    Returns:
        str: The text of the log file the run wrote.
    """
    name = f"experiment_name=run{next(_RUNS)}_{os.getpid()}"
    started = []  # the run's dataloader iterators with worker processes
    init = _MultiProcessingDataLoaderIter.__init__

    def recorded_init(iterator, *init_args, **init_kwargs):
        init(iterator, *init_args, **init_kwargs)
        started.append(iterator)

    try:
        with mock.patch.object(_MultiProcessingDataLoaderIter, "__init__", recorded_init):
            load_tool("train").main(
                train_cmd(config, work_dir, *args, cfg_options=[*cfg_options, name])
            )
    finally:
        torch.use_deterministic_algorithms(False)  # (a config's randomness.deterministic)
        # The run's persistent dataloader workers: stopped now, they exit at once; left to the
        # garbage collector (mmengine collects whenever it builds a dataset), torch waits 5 s
        # for each of them.
        for iterator in started:
            iterator._shutdown_workers()
    logs = sorted(Path(work_dir).glob("*/*.log"), key=os.path.getmtime)
    return logs[-1].read_text() if logs else ""


def logged_losses(work_dir: str | os.PathLike, last_run_only: bool = False) -> dict[int, float]:
    """``{iteration: loss}`` from a work dir's ``vis_data/scalars.json`` (the latest run wins).

    Args:
        work_dir: Work directory of one or more runs.
        last_run_only: Read only the latest run's file.

    Returns:
        dict[int, float]: The logged total loss of each logged iteration.
    """
    logs = sorted(Path(work_dir).glob("*/vis_data/scalars.json"), key=os.path.getmtime)
    losses = {}
    for log in logs[-1:] if last_run_only else logs:
        for record in map(json.loads, log.read_text().splitlines()):
            if "loss" in record:
                losses[record["step"]] = record["loss"]
    return losses


def load_checkpoint(path: str | os.PathLike) -> dict:
    """An mmengine checkpoint, loaded weights only (``lut_plugin.runtime``'s reader).

    Args:
        path: Checkpoint file.

    Returns:
        dict: The checkpoint (``state_dict``, ``meta``, ``optimizer``, ...).
    """
    from lut_plugin.runtime import load_checkpoint_file

    return load_checkpoint_file(str(path))


def state_dict_max_diff(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]
) -> dict[str, float]:
    """Max absolute difference per key; asserts both have the same keys and shapes.

    Args:
        a: First state dict.
        b: Second state dict.

    Returns:
        dict[str, float]: ``key -> max |a - b|`` (0.0 for equal integer buffers).
    """
    missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
    assert not missing and not extra, f"keys differ: only in b {missing[:5]}, only in a {extra[:5]}"
    diffs = {}
    for key in a:
        ta, tb = a[key], b[key]
        assert ta.shape == tb.shape, f"{key}: shape {tuple(ta.shape)} != {tuple(tb.shape)}"
        if ta.numel() == 0:
            diffs[key] = 0.0
        else:
            diffs[key] = (ta.double() - tb.double()).abs().max().item()
    return diffs


def assert_state_dicts_equal(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], atol: float = 0.0
) -> None:
    """Assert two state dicts have the same keys, shapes and values (within ``atol``).

    Args:
        a: First state dict.
        b: Second state dict.
        atol: Largest allowed absolute difference.
    """
    diffs = state_dict_max_diff(a, b)
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    assert not bad, f"{len(bad)}/{len(diffs)} tensors differ (> {atol}): " + ", ".join(
        f"{k}: {v:.3g}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])[:8]
    )


def assert_same_training_state(a: Mapping, b: Mapping) -> None:
    """Assert two checkpoints hold the same iteration, weights (buffers included) and Adam
    moments.

    Args:
        a: First checkpoint.
        b: Second checkpoint.
    """
    assert a["meta"]["iter"] == b["meta"]["iter"]
    assert_state_dicts_equal(a["state_dict"], b["state_dict"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


class HostSyncs(TorchDispatchMode):
    """Records the operators that make the host wait for a GPU: reading a value (``.item()``,
    ``bool()``, ``float()``) or an output whose size depends on the values. On the CPU a
    ``.tolist()``, ``.cpu()`` or ``.numpy()`` of a CPU tensor dispatches nothing and is not
    seen."""

    SYNCS = ("_local_scalar_dense", "is_nonzero", "nonzero", "masked_select", "_unique2", "equal")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.SYNCS:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))
