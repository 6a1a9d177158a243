"""Every config under configs/mmseg loads and builds; layer-wise lr decay param groups."""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.models.backbones import MAE
from mmseg.registry import MODELS

import lut_plugin  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "mmseg").glob("*.py"))
BIG = {
    # file stem prefix: (embed_dims, num_layers, num_heads, out_indices, pre-training config)
    "lut_vit-s16": (384, 12, 6, [3, 5, 7, 11], "lut_vits_400e"),
    "lut_vit-b16": (768, 12, 12, [3, 5, 7, 11], "lut_vitb_400e"),
    "lut_vit-l16": (1024, 24, 16, [7, 11, 15, 23], "lut_vitl_400e"),
}


@contextlib.contextmanager
def no_init():
    """Build large models fast: skip the random initialisation done in constructors."""
    names = ['kaiming_uniform_', 'uniform_', 'normal_', 'trunc_normal_', 'constant_', 'zeros_',
             'ones_', 'xavier_uniform_']  # fmt: skip
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, lambda t, *a, **k: t)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


def vit_params(d, depth, heads, grid=32, patch=16, final_norm=False):
    """Parameters of mmseg's MAE backbone (what LUTMAE builds); no final norm by default."""
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (8 * d * d + 5 * d) + 2 * d
    rel_table = ((2 * grid - 1) ** 2 + 3) * heads
    embed = 3 * patch * patch * d + d + d + (grid * grid + 1) * d
    return embed + depth * (per_block + rel_table) + (2 * d if final_norm else 0)


@functools.cache
def load_and_build(path: str):
    """Config and (uninitialised) model, built once per config for this module."""
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get("default_scope", "mmseg"))
    with no_init():
        return cfg, MODELS.build(cfg.model)


def test_all_configs_found():
    names = {p.name for p in CONFIGS}
    assert "lut_vit-tiny_upernet_toy-ade_cpu.py" in names
    for prefix in BIG:
        assert f"{prefix}_upernet_8xb2-amp-160k_ade20k-512x512.py" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_builds(path):
    cfg, model = load_and_build(str(path))
    assert cfg.custom_imports.imports == ["lut_plugin"]
    assert cfg.model.backbone.type == "LUTMAE"
    assert cfg.model.backbone.encoder == "student"
    assert cfg.model.backbone.init_values == 1.0
    prefix = path.stem.split("_upernet")[0]
    if prefix in BIG:
        d, depth, heads, out_indices, pre = BIG[prefix]
        # the recipe of Table E / mmseg's MAE config
        assert cfg.optim_wrapper.type == "AmpOptimWrapper"
        assert cfg.optim_wrapper.optimizer == dict(
            type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05
        )
        assert cfg.optim_wrapper.paramwise_cfg == dict(num_layers=depth, layer_decay_rate=0.65)
        assert cfg.optim_wrapper.constructor == "LayerDecayOptimizerConstructor"
        assert [s["type"] for s in cfg.param_scheduler] == ["LinearLR", "PolyLR"]
        assert cfg.param_scheduler[0]["end"] == 1500 == cfg.param_scheduler[1]["begin"]
        assert cfg.train_cfg.max_iters == 160000 == cfg.param_scheduler[1]["end"]
        assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
        assert cfg.model.backbone.drop_path_rate == 0.1
        assert cfg.crop_size == (512, 512) and cfg.model.backbone.img_size == (512, 512)
        assert cfg.train_dataloader.dataset.type == "ADE20KDataset"
        assert cfg.model.decode_head.num_classes == 150
        # mmseg's MAE recipe: no final norm (its MAE backbone defaults to final_norm=False and
        # the upstream config keeps that default)
        assert cfg.model.backbone.final_norm is False
        assert inspect.signature(MAE).parameters["final_norm"].default is False
        # random-scale jitter 0.5-2.0 for training, one scale for testing
        train = {t["type"]: t for t in cfg.train_dataloader.dataset.pipeline}
        assert train["RandomResize"]["ratio_range"] == (0.5, 2.0)
        assert train["RandomCrop"]["crop_size"] == (512, 512)
        test = {t["type"]: t for t in cfg.test_dataloader.dataset.pipeline}
        assert test["Resize"]["scale"] == (2048, 512) and "TestTimeAug" not in test
        assert cfg.model.test_cfg == dict(mode="slide", crop_size=(512, 512), stride=(341, 341))
        text = path.read_text() if prefix == "lut_vit-b16" else ""
        assert "single-scale training" not in text
        # the checkpoint path names the pre-training config that writes it
        assert cfg.model.pretrained == f"work_dirs/{pre}/epoch_400.pth"
        assert (ROOT / "configs" / "mmpretrain" / f"{pre}.py").is_file()
        assert re.search(rf"configs/mmpretrain/{pre}\.py", path.read_text())
    bb = model.backbone
    n_backbone = sum(p.numel() for p in bb.parameters())
    if prefix in BIG:
        assert (bb.embed_dims, bb.num_layers, bb.num_heads) == (d, depth, heads)
        assert list(bb.out_indices) == out_indices
        assert bb.patch_shape == (32, 32) and bb.pos_embed.shape == (1, 1025, d)
        assert n_backbone == vit_params(d, depth, heads)
        assert model.decode_head.in_channels == [d] * 4
    else:
        assert cfg.optim_wrapper.type == "OptimWrapper"
        assert cfg.train_dataloader.dataset.type == "LUTToyADE20KDataset"
        assert n_backbone == vit_params(96, 4, 4, grid=16, patch=4)
        assert model.decode_head.num_classes == 6
        assert all(type(m).__name__ != "SyncBatchNorm" for m in model.modules()), (
            "the CPU config must not use SyncBN"
        )
        model.eval()
        with torch.no_grad():
            feats = model.extract_feat(torch.randn(1, 3, 64, 64))
        assert [tuple(f.shape) for f in feats] == [
            (1, 96, 64, 64), (1, 96, 32, 32), (1, 96, 16, 16), (1, 96, 8, 8)
        ]  # fmt: skip


def expected_layer_id(name: str, depth: int) -> int:
    """mmseg's ViT rule: embeddings 0, block i -> i + 1, everything else depth + 1."""
    if name in ("backbone.cls_token", "backbone.pos_embed") or name.startswith(
        "backbone.patch_embed"
    ):
        return 0
    m = re.match(r"backbone\.layers\.(\d+)\.", name)
    return int(m.group(1)) + 1 if m else depth + 1


@pytest.mark.parametrize("prefix", ["lut_vit-b16", "lut_vit-l16"])
def test_layer_decay_param_groups(prefix):
    """The built optimiser gives block i of the backbone lr * 0.65 ** (depth + 1 - (i + 1))."""
    path = ROOT / "configs" / "mmseg" / f"{prefix}_upernet_8xb2-amp-160k_ade20k-512x512.py"
    cfg, model = load_and_build(str(path))
    init_default_scope("mmseg")  # the model may come from the cache, built under another test
    depth = BIG[prefix][1]
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.pop("loss_scale")
    optim_cfg.type = "OptimWrapper"  # AmpOptimWrapper wants a GPU; the groups are the same
    groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
    lr_of = {}
    for g in groups:
        for name in g["param_names"]:
            lr_of[name] = (g["lr"], g["weight_decay"])
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(lr_of) == sorted(names)  # every parameter in exactly one group
    for name in names:
        lr, wd = lr_of[name]
        assert lr == pytest.approx(1e-4 * 0.65 ** (depth + 1 - expected_layer_id(name, depth)))
        p = dict(model.named_parameters())[name]
        assert wd == (0.0 if p.ndim == 1 else 0.05)
    # depth-dependent: one rate per block, increasing with depth
    block_lrs = [lr_of[f"backbone.layers.{i}.attn.qkv.weight"][0] for i in range(depth)]
    assert all(a < b for a, b in zip(block_lrs, block_lrs[1:]))
    assert block_lrs[-1] == pytest.approx(1e-4 * 0.65)
    assert lr_of["backbone.patch_embed.projection.weight"][0] == pytest.approx(
        1e-4 * 0.65 ** (depth + 1)
    )
    assert lr_of["decode_head.conv_seg.weight"][0] == pytest.approx(1e-4)
    assert len({round(g["lr"], 15) for g in groups}) == depth + 2


def test_cpu_walkthroughs_start_from_a_checkpoint_the_toy_run_keeps():
    """The toy fine-tuning and segmentation configs name the toy pre-training run's last
    checkpoint, which its checkpoint hook keeps."""
    pretrain = Config.fromfile(ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_toy_cpu.py")
    epochs, hook = pretrain.train_cfg.max_epochs, pretrain.default_hooks.checkpoint
    assert epochs % hook.interval == 0 and hook.get("max_keep_ckpts", -1) != 0
    last = f"work_dirs/lut_vit-tiny_toy_cpu/epoch_{epochs}.pth"
    seg = Config.fromfile(ROOT / "configs" / "mmseg" / "lut_vit-tiny_upernet_toy-ade_cpu.py")
    finetune = Config.fromfile(ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_finetune_toy_cpu.py")
    assert seg.model.pretrained == last
    assert finetune.model.backbone.init_cfg.checkpoint == last
    assert last in (ROOT / "docs" / "segmentation.md").read_text()
