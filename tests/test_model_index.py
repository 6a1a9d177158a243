"""LUT's model index: every entry builds by name through mmpretrain's model hub.

``import lut_plugin`` registers ``model-index.yml`` with ``mmpretrain.apis.ModelHub``; these
tests go through mmpretrain's public API (``list_models``, ``get_model``) only.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mmpretrain
import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint
from mmpretrain.apis import ModelHub

from lut_plugin.model_index import MIM_ROOT, MODEL_INDEX

METAFILE = ROOT / "configs" / "mmpretrain" / "metafile.yml"
MODELS = yaml.safe_load(METAFILE.read_text())["Models"]
NAMES = [m["Name"] for m in MODELS]
# Configs that are not LUT models: the upstream baselines at the paper's settings.
BASELINES = {"mae_vitb_100e.py", "mae_vit-tiny_toy_cpu.py", "simmim_vitb_100e.py"}
GPUS = 8  # the configs' batch sizes are per GPU
# one entry per config: entries sharing a config build the same model
BY_CONFIG = {m["Config"]: m["Name"] for m in reversed(MODELS)}

# What the paper reports (METHOD.md "Reported numbers", supplementary Tables A-C), by entry.
PAPER_TOP1 = {
    "lut-simmim_vitb_100e-pre_finetune_100e": 81.8,  # Table A
    "lut_vitb_400e_wbc0.1-pre_finetune_100e": 83.2,  # Table B
    "lut_vitb_400e-pre_finetune_100e": 83.5,
    "lut_vitb_400e_wbc0.5-pre_finetune_100e": 83.4,
    "lut_vitb_400e_wbc1.0-pre_finetune_100e": 82.9,
    "lut_vitb_400e_wbc0.1-pre_linear_90e": 70.7,
    "lut_vitb_400e-pre_linear_90e": 67.9,
    "lut_vitb_400e_wbc0.5-pre_linear_90e": 70.1,
    "lut_vitb_400e_wbc1.0-pre_linear_90e": 63.6,
    "lut_vitb_100e_wmim0-pre_finetune_100e": 82.0,  # Table C
    "lut_vitb_100e-pre_finetune_100e": 82.6,
}


def test_list_models_lists_exactly_the_metafile():
    assert MODEL_INDEX.resolve() == (ROOT / "model-index.yml").resolve()
    assert mmpretrain.list_models("lut*") == sorted(NAMES)
    assert len(NAMES) == len(set(NAMES)) == 33


def test_every_lut_config_has_an_entry_and_every_entry_a_config():
    configs = {Path(m["Config"]).name for m in MODELS}
    on_disk = {p.name for p in (ROOT / "configs" / "mmpretrain").glob("*.py")}
    assert configs <= on_disk
    assert on_disk - configs == BASELINES
    for model in MODELS:
        assert Path(ModelHub.get(model["Name"]).config.filename) == MIM_ROOT / model["Config"]


@functools.cache
def load_cfg(relpath: str) -> Config:
    return Config.fromfile(str(ROOT / relpath))


@pytest.mark.parametrize("model", MODELS, ids=NAMES)
def test_entry_metadata_matches_its_config(model):
    assert model["Weights"] is None  # no checkpoints are released
    assert model["In Collection"] == "LUT"
    cfg = load_cfg(model["Config"])
    gpus = 1 if "toy_cpu" in model["Name"] else GPUS
    assert model["Metadata"]["Epochs"] == cfg.train_cfg.max_epochs
    accumulation = cfg.optim_wrapper.get("accumulative_counts", 1)  # images per optimiser step
    assert model["Metadata"]["Batch Size"] == cfg.train_dataloader.batch_size * gpus * accumulation
    for downstream in model.get("Downstream", []):
        assert downstream.startswith(model["Name"] + "-pre_") and downstream in NAMES
    if "-pre_" in model["Name"]:  # a classifier: the task picks mmpretrain's inferencer
        (result,) = model["Results"]
        dataset = "Toy shapes (generated)" if "toy_cpu" in model["Name"] else "ImageNet-1k"
        assert (result["Task"], result["Dataset"]) == ("Image Classification", dataset)
        paper = PAPER_TOP1.get(model["Name"])
        assert result["Metrics"] == ({"Top 1 Accuracy": paper} if paper else {})
    else:
        assert model["Name"] not in PAPER_TOP1 and model["Results"] is None


def test_inference_model_runs_a_fine_tuned_classifier_entry(tmp_path):
    """Every classifier entry names its task, so mmpretrain picks the classification
    inferencer (here the tiny toy one, random weights)."""
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    model = mmpretrain.get_model("lut_vit-tiny_toy_cpu-pre_finetune_toy_cpu")
    result = mmpretrain.inference_model(model, str(image))
    assert 0 <= result["pred_label"] < 10 and len(result["pred_scores"]) == 10


@pytest.mark.parametrize("name", sorted(BY_CONFIG.values()))
def test_get_model_builds_every_config_without_weights(name):
    """One entry per config, on the meta device: paper-sized models without weights."""
    with torch.device("meta"):
        model = mmpretrain.get_model(name)
    cfg = load_cfg(next(m["Config"] for m in MODELS if m["Name"] == name))
    assert type(model).__name__ == cfg.model.type
    assert type(model.backbone).__name__ == cfg.model.backbone.type


def test_get_model_builds_lut_by_name_and_loads_a_local_checkpoint(tmp_path):
    model = mmpretrain.get_model("lut_vit-tiny_toy_cpu")
    assert type(model).__name__ == "LUT" and type(model.backbone).__name__ == "LUTViT"
    assert not model.training
    # a checkpoint as the runner writes it, every tensor moved away from the init
    gen = torch.Generator().manual_seed(0)
    state = {
        k: v + torch.randn(v.shape, generator=gen) if v.dtype.is_floating_point else v
        for k, v in model.state_dict().items()
    }
    path = tmp_path / "epoch_1.pth"
    save_checkpoint({"meta": {"epoch": 1}, "state_dict": state}, str(path))

    loaded = mmpretrain.get_model("lut_vit-tiny_toy_cpu", pretrained=str(path))
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    feats = loaded.extract_feat(torch.randn(2, 3, 32, 32))
    assert feats[0].shape[0] == 2


def test_installed_wheel_registers_the_models(tmp_path):
    """A wheel (not an editable install) carries model-index.yml and the configs as copies."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "model-index.yml"):
        shutil.copy(ROOT / name, src / name)
    for name in ("configs", "lut_plugin"):
        shutil.copytree(
            ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run = dict(check=True, capture_output=True, text=True, timeout=300)
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", "dist", "."],
                   cwd=src, **run)  # fmt: skip
    (wheel,) = (src / "dist").glob("*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], **run)
    assert (site / "lut_plugin" / ".mim" / "configs" / "mmpretrain" / "metafile.yml").is_file()
    assert not (site / "lut_plugin" / ".mim" / "configs").is_symlink()

    check = (
        "import lut_plugin, mmpretrain\n"
        "print(lut_plugin.__file__)\n"
        "print(len(mmpretrain.list_models('lut*')))\n"
        "print(type(mmpretrain.get_model('lut_vit-tiny_toy_cpu')).__name__)\n"
        "print(mmpretrain.ModelHub.get('lut_vitb_400e').config.filename)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, **run)
    lines = out.stdout.split()
    assert lines[0] == str(site / "lut_plugin" / "__init__.py")
    assert lines[1:3] == [str(len(NAMES)), "LUT"]
    assert lines[3] == str(site / "lut_plugin" / ".mim" / "configs/mmpretrain/lut_vitb_400e.py")
