"""LUT in mmpretrain's model hub (``list_models``, ``get_model``, ``inference_model``), from a
checkout and from an installed wheel; the paper's numbers wherever the project quotes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from unittest import mock

import mmpretrain
import numpy as np
import torch
import yaml
from conftest import ROOT
from mmengine.runner.checkpoint import save_checkpoint
from mmpretrain.apis import ModelHub

from lut_plugin.model_index import MIM_ROOT, MODEL_INDEX

MODELS = yaml.safe_load((ROOT / "configs/mmpretrain/metafile.yml").read_text())["Models"]
NAMES = [m["Name"] for m in MODELS]
# METHOD.md "Reported numbers": ImageNet-1K top-1 by entry (supplementary Tables A-C)
PAPER = {
    "lut-simmim_vitb_100e-pre_finetune_100e": 81.8,
    "lut_vitb_400e_wbc0.1-pre_finetune_100e": 83.2,
    "lut_vitb_400e-pre_finetune_100e": 83.5,
    "lut_vitb_400e_wbc0.5-pre_finetune_100e": 83.4,
    "lut_vitb_400e_wbc1.0-pre_finetune_100e": 82.9,
    "lut_vitb_400e_wbc0.1-pre_linear_90e": 70.7,
    "lut_vitb_400e-pre_linear_90e": 67.9,
    "lut_vitb_400e_wbc0.5-pre_linear_90e": 70.1,
    "lut_vitb_400e_wbc1.0-pre_linear_90e": 63.6,
    "lut_vitb_100e_wmim0-pre_finetune_100e": 82.0,
    "lut_vitb_100e-pre_finetune_100e": 82.6,
}
# docs/results/paper.md: (paper row, pre-training config, the row's last cells), main table too
DOCS_ROWS = [
    ("LUT, ViT-S/16", "`lut_vits_400e.py`", ["82.0"]),
    ("LUT, ViT-B/16", "`lut_vitb_400e.py`", ["84.2"]),
    ("LUT, ViT-L/16", "`lut_vitl_400e.py`", ["86.0"]),
    ("MAE, ViT-S/16", "mmpretrain MAE", ["81.4"]),
    ("MAE, ViT-B/16", "`mmpretrain::mae/mae_vit-base", ["83.7"]),
    ("MAE, ViT-L/16", "`mmpretrain::mae/mae_vit-large", ["85.6"]),
    ("SimMIM", "`simmim_vitb_100e.py`", ["81.6"]),
    ("LUT(SimMIM)", "`lut-simmim_vitb_100e.py`", ["81.8"]),
    ("0.1", "`lut_vitb_400e_wbc0.1.py`", ["83.2", "70.7"]),
    ("0.25 (default)", "`lut_vitb_400e.py`", ["83.5", "67.9"]),
    ("0.5", "`lut_vitb_400e_wbc0.5.py`", ["83.4", "70.1"]),
    ("1.0", "`lut_vitb_400e_wbc1.0.py`", ["82.9", "63.6"]),
    ("MAE", "`mae_vitb_100e.py`", ["82.1"]),
    ("L_BC only (w_mim = 0)", "`lut_vitb_100e_wmim0.py`", ["82.0"]),
    ("LUT", "`lut_vitb_100e.py`", ["82.6"]),
]


def _rows(path) -> list[list[str]]:
    lines = (ROOT / path).read_text().splitlines()
    return [[c.strip().strip("*") for c in x.strip("|").split("|")] for x in lines if x[:1] == "|"]


def test_the_hub_lists_every_entry_with_its_config():
    assert MODEL_INDEX.resolve() == (ROOT / "model-index.yml").resolve()
    assert mmpretrain.list_models("lut*") == sorted(NAMES) and len(set(NAMES)) == len(NAMES)
    config = ModelHub.get("lut_vitb_400e").config.filename  # each get() parses its config
    assert config == str(MIM_ROOT / "configs/mmpretrain/lut_vitb_400e.py")
    for model in MODELS:
        assert model["Weights"] is None and model["In Collection"] == "LUT"  # no released weights
        for downstream in model.get("Downstream", []):
            assert downstream.startswith(model["Name"] + "-pre_") and downstream in NAMES


def test_the_paper_numbers_wherever_they_are_quoted():
    readme = {r[0].strip("`"): r[2].split()[0] for r in _rows("configs/mmpretrain/README.md")}
    for model in MODELS:
        if "-pre_" not in model["Name"]:  # a pre-training entry
            assert model["Results"] is None
            continue
        (result,) = model["Results"]  # a classifier names its task: mmpretrain's inferencer
        data = "Toy shapes (generated)" if "toy_cpu" in model["Name"] else "ImageNet-1k"
        assert (result["Task"], result["Dataset"]) == ("Image Classification", data)
        paper = PAPER.get(model["Name"])
        assert result["Metrics"] == ({"Top 1 Accuracy": paper} if paper else {})
        assert readme[model["Name"]] == (str(paper) if paper else "—")
    docs = _rows("docs/results/paper.md")
    for first, config, numbers in DOCS_ROWS:
        found = [r[-len(numbers) :] for r in docs if r[0] == first and r[1].startswith(config)]
        assert found == [numbers], (first, config)


def test_get_model_loads_a_local_checkpoint_and_infers(tmp_path):
    model = mmpretrain.get_model("lut_vit-tiny_toy_cpu")
    assert type(model).__name__ == "LUT" and not model.training
    gen = torch.Generator().manual_seed(0)
    state = {k: v + torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}  # fmt: skip
    save_checkpoint({"meta": {"epoch": 1}, "state_dict": state}, str(tmp_path / "epoch_1.pth"))
    loaded = mmpretrain.get_model("lut_vit-tiny_toy_cpu", pretrained=str(tmp_path / "epoch_1.pth"))
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    # a fine-tuned classifier entry picks mmpretrain's classification inferencer
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "x.png")
    classifier = mmpretrain.get_model("lut_vit-tiny_toy_cpu-pre_finetune_toy_cpu")
    result = mmpretrain.inference_model(classifier, str(tmp_path / "x.png"))
    assert 0 <= result["pred_label"] < 10 and len(result["pred_scores"]) == 10


def test_installed_wheel_registers_the_models(tmp_path):
    """A wheel (not an editable install) carries model-index.yml and the configs as copies."""
    src, site = tmp_path / "src", tmp_path / "site"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "model-index.yml"):
        shutil.copy(ROOT / name, src / name)
    for name in ("configs", "lut_plugin"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "wheel", "--no-deps"]
    run = dict(check=True, capture_output=True, text=True, timeout=300)
    subprocess.run([*pip, "--no-build-isolation", "-w", "dist", "."], cwd=src, **run)
    (wheel,) = (src / "dist").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(site)  # what pip installs of a pure-Python wheel
    mim = site / "lut_plugin" / ".mim"
    for copy, checkout in [
        (site / "lut_plugin", ROOT / "lut_plugin"),
        (mim / "configs", ROOT / "configs"),
    ]:
        files = {p.relative_to(copy) for p in copy.rglob("*.py")}
        assert {f for f in files if ".mim" not in f.parts} == {
            p.relative_to(checkout) for p in checkout.rglob("*.py")
        }
    assert not (mim / "configs").is_symlink() and (mim / "model-index.yml").is_file()
    # what `import lut_plugin` does in the installed package (lut_plugin/model_index.py)
    with mock.patch.object(ModelHub, "_models_dict", {}):
        ModelHub.register_model_index(mim / "model-index.yml", config_prefix=mim)
        assert mmpretrain.list_models("lut*") == sorted(NAMES)
        config = ModelHub.get("lut_vitb_400e").config.filename
    assert config == str(mim / "configs" / "mmpretrain" / "lut_vitb_400e.py")
