"""Tables A-C pre-training configs: they load, build, run a tiny step and differ from
their reference config only where the paper's ablation says."""

from __future__ import annotations

import copy
from pathlib import Path

import mmpretrain
import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

CONFIGS = ROOT / "configs" / "mmpretrain"
UPSTREAM = Path(mmpretrain.__file__).parent / ".mim" / "configs"
MAE_400E = UPSTREAM / "mae" / "mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py"
TINY_ARCH = dict(_delete_=True, embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256)


@pytest.fixture(scope="module", autouse=True)
def mmpretrain_scope():
    """Build in mmpretrain's scope even if an earlier test left another default scope current."""
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        yield


PRETRAIN = {
    # config: (algorithm, w_mim, w_bc, epochs)
    "lut_vitb_400e_wbc0.1.py": ("LUT", 1.0, 0.1, 400),
    "lut_vitb_400e_wbc0.5.py": ("LUT", 1.0, 0.5, 400),
    "lut_vitb_400e_wbc1.0.py": ("LUT", 1.0, 1.0, 400),
    "lut_vitb_100e.py": ("LUT", 1.0, 0.25, 100),
    "lut_vitb_100e_wmim0.py": ("LUT", 0.0, 0.25, 100),
    "mae_vitb_100e.py": ("MAE", None, None, 100),
    "simmim_vitb_100e.py": ("SimMIM", None, None, 100),
    "lut-simmim_vitb_100e.py": ("LUTSimMIM", 1.0, 0.25, 100),
}


def load(path) -> Config:
    return Config.fromfile(str(CONFIGS / path if isinstance(path, str) else path))


def strip_scope(node):
    """Drop the ``_scope_`` keys mmengine adds to dicts inherited through ``mmpretrain::``."""
    if isinstance(node, dict):
        return {k: strip_scope(v) for k, v in node.items() if k != "_scope_"}
    if isinstance(node, (list, tuple)):
        return type(node)(strip_scope(v) for v in node)
    return node


def without(cfg: Config, *keys: str) -> dict:
    """The config as a dict (``_scope_`` markers dropped), with dotted keys removed."""
    out = strip_scope(copy.deepcopy(cfg.to_dict()))
    for key in keys:
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node[p]
        node.pop(last, None)
    return out


def schedule(cfg: Config) -> tuple:
    warmup, cosine = cfg.param_scheduler
    return (
        warmup.type,
        warmup.begin,
        warmup.end,
        cosine.type,
        cosine.begin,
        cosine.end,
        cosine.get("T_max"),
        cfg.train_cfg.max_epochs,
    )


# -- every config loads and builds at full size (on the meta device: no memory, no init) --
@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_config_loads_and_builds_full_size(name):
    algorithm, w_mim, w_bc, epochs = PRETRAIN[name]
    cfg = load(name)
    assert cfg.model.type == algorithm
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].end == epochs
    with torch.device("meta"):
        model = MODELS.build(cfg.model)
    assert model.backbone.embed_dims == 768
    assert len(model.backbone.layers) == 12
    assert model.backbone.patch_resolution == (14, 14)
    if w_bc is not None:
        assert (model.w_mim, model.w_bc) == (w_mim, w_bc)
        # LUT and LUT(SimMIM) update the teacher themselves, not through a hook
        assert ("LUTFiniteCheckHook",) == tuple(h.type for h in cfg.custom_hooks)
        assert cfg.train_dataloader.drop_last is True
        assert model.teacher is not None
    if w_mim == 0:
        assert not model.with_neck and not model.with_head


# -- a tiny version of each config runs one loss() ------------------------------------
def tiny(name: str) -> Config:
    cfg = load(name)
    simmim = "simmim" in name
    over = {
        "model.backbone.arch": dict(TINY_ARCH),
        "model.backbone.img_size": 32,
        "model.backbone.patch_size": 4,
    }
    if simmim:
        over["model.backbone.mask_patch_size"] = 8
        if cfg.model.get("neck") is not None:
            over.update({"model.neck.in_channels": 64, "model.neck.encoder_stride": 4})
            over["model.head.patch_size"] = 4
    elif cfg.model.get("neck") is not None:
        over.update(
            {
                "model.neck.num_patches": 64,
                "model.neck.patch_size": 4,
                "model.neck.embed_dim": 64,
                "model.neck.decoder_embed_dim": 32,
                "model.neck.decoder_depth": 1,
                "model.neck.decoder_num_heads": 4,
                "model.head.patch_size": 4,
            }
        )
    for part in ("projector", "predictor"):
        if cfg.model.get(part) is not None:
            over.update(
                {
                    f"model.{part}.in_channels": 64,
                    f"model.{part}.hid_channels": 128,
                    f"model.{part}.norm": "bn",
                }
            )
    cfg.merge_from_dict(over)
    return cfg


@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_tiny_version_runs_a_finite_loss(name):
    algorithm, w_mim, w_bc, _ = PRETRAIN[name]
    torch.manual_seed(0)
    model = MODELS.build(tiny(name).model)
    model.init_weights()
    model.train()
    gen = torch.Generator().manual_seed(1)
    x1 = torch.randn(4, 3, 32, 32, generator=gen)
    x2 = torch.randn(4, 3, 32, 32, generator=gen)
    if algorithm == "SimMIM":
        mask = torch.zeros(8, 8, dtype=torch.long)
        mask[4:] = 1
        losses = model.loss(x1, [DataSample().set_mask(mask) for _ in range(4)])
        expected = {"loss"}
    elif algorithm == "MAE":
        losses = model.loss(x1, [DataSample() for _ in range(4)])
        expected = {"loss"}
    else:
        losses = model.loss([x1, x2])
        expected = {"loss_mim"} if w_mim else set()
        expected |= {"loss_bc"} if w_bc else set()
    assert set(losses) == expected
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.patch_embed.projection.weight.grad.abs().sum() > 0


# -- each ablation differs from its reference only where it should --------------------
@pytest.mark.parametrize("w_bc", ["0.1", "0.5", "1.0"])
def test_wbc_ablation_changes_only_w_bc(w_bc):
    ablation = load(f"lut_vitb_400e_wbc{w_bc}.py")
    reference = load("lut_vitb_400e.py")
    assert ablation.model.w_bc == float(w_bc) and reference.model.w_bc == 0.25
    assert without(ablation, "model.w_bc") == without(reference, "model.w_bc")


def test_100e_lut_is_the_400e_recipe_on_a_100_epoch_schedule():
    lut100 = load("lut_vitb_100e.py")
    lut400 = load("lut_vitb_400e.py")
    keys = ("param_scheduler", "train_cfg")
    assert without(lut100, *keys) == without(lut400, *keys)
    assert schedule(lut100) == ("LinearLR", 0, 40, "CosineAnnealingLR", 40, 100, 60, 100)


def test_bc_only_differs_from_lut_100e_only_in_the_mim_branch():
    bc_only = load("lut_vitb_100e_wmim0.py")
    lut100 = load("lut_vitb_100e.py")
    assert bc_only.model.w_mim == 0.0
    assert bc_only.model.neck is None and bc_only.model.head is None
    keys = ("model.w_mim", "model.neck", "model.head")
    assert without(bc_only, *keys) == without(lut100, *keys)


def test_mae_100e_is_upstream_mae_with_the_same_schedule_as_lut_100e():
    mae100 = load("mae_vitb_100e.py")
    upstream = load(MAE_400E)
    keys = ("param_scheduler", "train_cfg", "train_dataloader.drop_last")
    keys += ("optim_wrapper.optimizer.fused",)
    assert without(mae100, *keys) == without(upstream, *keys)
    assert schedule(mae100) == schedule(load("lut_vitb_100e.py"))
    assert mae100.train_dataloader.drop_last is mae100.optim_wrapper.optimizer.fused is True
    assert mae100.model.backbone.mask_ratio == 0.75


def test_simmim_baseline_recipe():
    cfg = load("simmim_vitb_100e.py")
    backbone = cfg.model.backbone
    assert backbone.type == "LUTSimMIMViT" and (backbone.img_size, backbone.patch_size) == (224, 16)
    assert backbone.use_shared_rel_pos_bias and not backbone.use_abs_pos_emb
    assert backbone.drop_path_rate == 0.1 and backbone.layer_scale_init_value == 0.1
    assert (cfg.model.neck.type, cfg.model.neck.encoder_stride) == ("SimMIMLinearDecoder", 16)
    assert cfg.model.head.loss.criterion == "L1" and cfg.model.head.loss.channel == 3
    (gen,) = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == "SimMIMMaskGenerator"]
    assert (gen.input_size, gen.mask_patch_size, gen.model_patch_size, gen.mask_ratio) == (
        224,
        32,
        16,
        0.6,
    )
    assert (backbone.mask_patch_size, backbone.mask_ratio) == (32, 0.6)
    assert cfg.train_dataloader.batch_size * 8 == 2048
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(4e-4)
    assert cfg.optim_wrapper.clip_grad.max_norm == 5.0
    assert schedule(cfg)[:7] == ("LinearLR", 0, 10, "CosineAnnealingLR", 10, 100, 90)


def test_lut_simmim_is_simmim_plus_bc():
    lut = load("lut-simmim_vitb_100e.py")
    simmim = load("simmim_vitb_100e.py")
    pipeline_base = load("_base_/lut_pipeline.py")
    assert lut.model.type == "LUTSimMIM" and lut.model.w_bc == 0.25
    assert lut.model.projector.in_channels == 768
    # Same encoder, decoder, head, optimiser and schedule as the baseline.
    for key in ("backbone", "neck", "head"):
        assert lut.model[key].to_dict() == simmim.model[key].to_dict()
    for key in ("param_scheduler", "train_cfg"):
        assert lut[key] == simmim[key]
    # (the constructor only leaves the frozen teacher out quietly)
    assert lut.optim_wrapper == {
        **simmim.optim_wrapper,
        "constructor": lut.optim_wrapper.constructor,
    }
    assert lut.optim_wrapper.constructor == "SkipFrozenOptimWrapperConstructor"
    # fused: a step the loss scaler skips still calls the optimiser, so the teacher updates
    assert lut.optim_wrapper.optimizer.fused is True
    # LUT's two views; masks come from the model, not from SimMIMMaskGenerator.
    assert lut.train_dataloader.dataset.pipeline == pipeline_base.lut_train_pipeline
    assert lut.train_dataloader.batch_size == simmim.train_dataloader.batch_size


def test_results_table_lists_every_new_config():
    text = (ROOT / "docs" / "results" / "paper.md").read_text()
    names = list(PRETRAIN) + [
        "lut_vits_finetune_300e.py",
        "lut_vitb_finetune_100e.py",
        "lut_vitl_finetune_50e.py",
        "lut_vitb_linear_90e.py",
        "simmim_vitb_finetune_100e.py",
    ]
    missing = [n for n in names if n not in text]
    assert not missing
    # the paper's numbers (METHOD.md) in the row of the config that reproduces them
    rows = [
        [cell.strip().strip("*") for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    expected = [  # first cell, start of the second (pre-training config), last cells
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
    for first, config, numbers in expected:
        found = [r for r in rows if r[0] == first and r[1].startswith(config)]
        assert [r[-len(numbers) :] for r in found] == [numbers], (first, config, found)
