"""Fine-tuning / linear-probe configs: Table D values and loading a LUT pre-training checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import mmpretrain
import numpy as np
import pytest
import torch
from conftest import ROOT, build_tiny_lut
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import save_checkpoint
from mmpretrain.registry import MODELS
from test_simmim import DIM as SIMMIM_DIM
from test_simmim import tiny_lut_simmim_cfg

import lut_plugin.checkpoint  # noqa: F401  (allow-lists mmengine's types for torch.load)

CONFIGS = ROOT / "configs" / "mmpretrain"
UPSTREAM = Path(mmpretrain.__file__).parent / ".mim" / "configs"
TINY_ARCH = dict(_delete_=True, embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256)

# METHOD.md Table D: (arch dims, base lr per 256 images, layer decay, epochs)
TABLE_D = {
    "lut_vits_finetune_300e.py": ((384, 12, 6), 5e-4, 0.75, 300),
    "lut_vitb_finetune_100e.py": ((768, 12, 12), 2.5e-4, 0.65, 100),
    "lut_vitl_finetune_50e.py": ((1024, 24, 16), 1e-3, 0.65, 50),
}
FINETUNE_FROM_MAE_FLAVOUR = [
    "lut_vits_finetune_300e.py",
    "lut_vitb_finetune_100e.py",
    "lut_vitl_finetune_50e.py",
]
GPUS = 8  # the configs' batch sizes are per GPU (mmpretrain's "8xb128")


@pytest.fixture(scope="module", autouse=True)
def mmpretrain_scope():
    """Build in mmpretrain's scope even if an earlier test left another default scope current."""
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        yield


def load(name: str) -> Config:
    return Config.fromfile(str(CONFIGS / name))


def strip_scope(node):
    """Drop the ``_scope_`` keys mmengine adds to dicts inherited through ``mmpretrain::``."""
    if isinstance(node, dict):
        return {k: strip_scope(v) for k, v in node.items() if k != "_scope_"}
    if isinstance(node, (list, tuple)):
        return type(node)(strip_scope(v) for v in node)
    return node


def build_on_meta(cfg: Config):
    with torch.device("meta"):
        return MODELS.build(cfg.model)


def assert_timm_finetune_data_and_head(cfg: Config) -> None:
    """Table D's augmentation and loss, which SimMIM's fine-tuning recipe shares (timm's)."""
    pipeline = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert pipeline["RandomResizedCrop"].scale == 224
    randaug = pipeline["RandAugment"]
    assert (randaug.policies, randaug.num_policies, randaug.total_level) == (
        "timm_increasing",
        2,
        10,
    )
    assert (randaug.magnitude_level, randaug.magnitude_std) == (9, 0.5)
    assert pipeline["RandomErasing"].erase_prob == 0.25

    model = cfg.model
    assert model.head.loss.type == "LabelSmoothLoss"
    assert model.head.loss.label_smooth_val == 0.1
    augments = {a.type: a.alpha for a in model.train_cfg.augments}
    assert augments == {"Mixup": 0.8, "CutMix": 1.0}
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert (cfg.model.backbone.img_size, cfg.model.backbone.patch_size) == (224, 16)


# -- Table D -------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TABLE_D))
def test_finetune_config_follows_table_d(name):
    (dims, layers, heads), base_lr, layer_decay, epochs = TABLE_D[name]
    cfg = load(name)

    batch = cfg.train_dataloader.batch_size * GPUS
    assert batch == 1024
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == "AdamW"
    assert tuple(opt.betas) == (0.9, 0.999)
    assert opt.weight_decay == 0.05
    assert math.isclose(opt.lr, base_lr * batch / 256, rel_tol=1e-12)
    assert cfg.optim_wrapper.constructor == "LearningRateDecayOptimWrapperConstructor"
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == layer_decay

    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == ("LinearLR", 0, 5, True)
    assert (cosine.type, cosine.begin, cosine.end) == ("CosineAnnealingLR", 5, epochs)
    assert cosine.get("T_max", epochs - 5) == epochs - 5
    assert cfg.train_cfg.max_epochs == epochs

    assert_timm_finetune_data_and_head(cfg)
    model = cfg.model
    assert model.backbone.init_cfg.type == "Pretrained"
    assert model.backbone.init_cfg.prefix == "backbone."
    assert model.head.in_channels == dims

    net = build_on_meta(cfg)
    assert net.backbone.embed_dims == dims
    assert len(net.backbone.layers) == layers
    assert net.backbone.layers[0].attn.num_heads == heads


def test_linear_probe_follows_mmpretrain_mae_protocol():
    cfg = load("lut_vitb_linear_90e.py")
    upstream = Config.fromfile(
        str(UPSTREAM / "mae" / "benchmarks" / "vit-base-p16_8xb2048-linear-coslr-90e_in1k.py")
    )
    ours = strip_scope(cfg.to_dict())
    theirs = strip_scope(upstream.to_dict())
    # Only the checkpoint path and the plugin import differ from the upstream protocol.
    assert ours["model"]["backbone"]["init_cfg"]["checkpoint"].endswith(
        "lut_vitb_400e/epoch_400.pth"
    )
    ours["model"]["backbone"]["init_cfg"]["checkpoint"] = ""
    ours.pop("custom_imports")
    assert ours == theirs
    assert cfg.model.backbone.frozen_stages == 12 and cfg.model.backbone.out_type == "cls_token"
    assert cfg.train_cfg.max_epochs == 90


# -- SimMIM flavour: SimMIM's own fine-tuning recipe ----------------------------------
def test_simmim_finetune_follows_simmims_vit_b_recipe():
    """Supplementary B.1: Table A's rows are fine-tuned "following the fine-tuning recipe of
    SimMIM" (microsoft/SimMIM simmim_finetune__vit_base__img224__800ep.yaml + config.py)."""
    cfg = load("simmim_vitb_finetune_100e.py")
    batch = cfg.train_dataloader.batch_size * GPUS
    assert batch == 1024
    per_512 = batch / 512  # SimMIM scales every lr by batch / 512
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, tuple(opt.betas), opt.eps, opt.weight_decay) == (
        "AdamW", (0.9, 0.999), 1e-8, 0.05
    )  # fmt: skip
    assert math.isclose(opt.lr, 1.25e-3 * per_512, rel_tol=1e-12)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5.0)
    assert cfg.optim_wrapper.constructor == "LearningRateDecayOptimWrapperConstructor"
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65

    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == ("LinearLR", 0, 20, True)
    assert math.isclose(opt.lr * warmup.start_factor, 2.5e-7 * per_512, rel_tol=1e-12)
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max) == (
        "CosineAnnealingLR", 20, 100, 80
    )  # fmt: skip
    assert math.isclose(cosine.eta_min, 2.5e-7 * per_512, rel_tol=1e-12)
    assert cfg.train_cfg.max_epochs == 100
    assert warmup.convert_to_iter_based and cosine.convert_to_iter_based

    assert_timm_finetune_data_and_head(cfg)
    bb = cfg.model.backbone
    assert (bb.type, bb.out_type, bb.use_abs_pos_emb, bb.use_rel_pos_bias) == (
        "BEiTViT", "avg_featmap", False, True
    )  # fmt: skip
    assert bb.init_cfg.checkpoint == "work_dirs/lut-simmim_vitb_100e/epoch_100.pth"


def test_simmim_finetune_param_groups(lut_simmim_checkpoint):
    """The built optimiser: SimMIM's weight-decay exemptions and layer-wise lr decay."""
    path, _ = lut_simmim_checkpoint
    cfg = load("simmim_vitb_finetune_100e.py")
    model, _ = _tiny_finetune(
        "simmim_vitb_finetune_100e.py", path, "backbone.", **{"model.head.in_channels": SIMMIM_DIM}
    )
    depth = len(model.backbone.layers)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert wrapper.clip_grad_kwargs == dict(max_norm=5.0)
    base_lr, named = cfg.optim_wrapper.optimizer.lr, dict(model.named_parameters())
    seen = set()
    for group in wrapper.optimizer.param_groups:
        (name,) = group["param_names"] if "param_names" in group else [group["param_name"]]
        seen.add(name)
        param = named[name]
        no_decay = param.ndim == 1 or name == "backbone.cls_token"
        assert group["weight_decay"] == (0.0 if no_decay else 0.05), name
        if name.startswith("backbone.layers."):
            layer_id = int(name.split(".")[2]) + 1
        elif name.startswith(("backbone.patch_embed", "backbone.cls_token")):
            layer_id = 0
        else:
            layer_id = depth + 1
        assert math.isclose(group["lr"], base_lr * 0.65 ** (depth + 1 - layer_id)), name
    assert seen == set(named)
    # SimMIM's ViT exempts only pos/cls: the relative position bias tables decay.
    assert any(n.endswith("relative_position_bias_table") for n in seen)


@pytest.mark.parametrize("name", sorted(TABLE_D))
def test_finetune_layer_decay_param_groups(name, lut_checkpoint):
    """The built optimiser of the MAE-flavour fine-tuning: lr x decay^(depth + 1 - layer id)
    (patch embedding and tokens 0, block i i + 1, final norm and head depth + 1), no weight
    decay on 1-D parameters and the tokens."""
    path, _ = lut_checkpoint
    cfg = load(name)
    model, _ = _tiny_finetune(name, path, "backbone.")
    depth, decay = len(model.backbone.layers), TABLE_D[name][2]
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr, named = cfg.optim_wrapper.optimizer.lr, dict(model.named_parameters())
    seen = set()
    for group in wrapper.optimizer.param_groups:
        (param_name,) = group["param_names"] if "param_names" in group else [group["param_name"]]
        seen.add(param_name)
        if param_name.startswith("backbone.layers."):
            layer_id = int(param_name.split(".")[2]) + 1
        elif param_name.startswith(
            ("backbone.patch_embed", "backbone.cls_token", "backbone.pos_embed")
        ):
            layer_id = 0
        else:
            layer_id = depth + 1
        expected = base_lr * decay ** (depth + 1 - layer_id)
        assert math.isclose(group["lr"], expected, rel_tol=1e-9), param_name
        no_decay = named[param_name].ndim == 1 or param_name.endswith(("cls_token", "pos_embed"))
        assert group["weight_decay"] == (0.0 if no_decay else 0.05), param_name
    assert seen == {n for n, p in named.items() if p.requires_grad}


def test_linear_probe_on_mean_pooled_patch_tokens(lut_checkpoint):
    """The variant probes mean(final-normed patch tokens), the feature L_BC trains."""
    cfg = load("lut_vitb_linear-meanpool_90e.py")
    default = load("lut_vitb_linear_90e.py")
    ours, theirs = strip_scope(cfg.to_dict()), strip_scope(default.to_dict())
    assert ours["model"].pop("neck") == [
        dict(type="GlobalAveragePooling"),
        dict(type="ClsBatchNormNeck", input_features=768),
    ]
    assert theirs["model"].pop("neck") == dict(type="ClsBatchNormNeck", input_features=768)
    assert ours["model"]["backbone"].pop("out_type") == "featmap"
    assert theirs["model"]["backbone"].pop("out_type") == "cls_token"
    assert ours == theirs  # everything else is the default probe

    path, _ = lut_checkpoint
    model, _ = _tiny_finetune(
        "lut_vitb_linear-meanpool_90e.py",
        path,
        "backbone.",
        **{"model.backbone.frozen_stages": 2, "model.neck.1.input_features": 64},
    )
    model.eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pooled = model.neck[0](model.backbone(x))[0]
        model.backbone.out_type = "raw"  # (B, 1 + L, C) after the final norm
        tokens = model.backbone(x)[0]
    assert model.backbone.final_norm
    torch.testing.assert_close(pooled, tokens[:, 1:].mean(dim=1), atol=1e-6, rtol=0)
    assert not any(p.requires_grad for p in model.backbone.parameters())


# -- loading a LUT checkpoint ---------------------------------------------------------
def _perturbed_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The model's state with every float tensor moved randomly, so no value is an init value."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().clone()
        if value.dtype.is_floating_point:
            value += 0.5 * torch.randn(value.shape, generator=gen)
        state[key] = value
    return state


def _save_like_the_runner(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write what mmengine's Runner writes: meta (numpy scalars), message hub, state_dict."""
    hub = MessageHub.get_instance(f"finetune-test-{path.stem}")
    hub.update_scalar("train/loss", 1.25)
    hub.update_info("iter", 1)
    meta = {"epoch": 1, "iter": 1, "seed": np.int64(0), "experiment_name": path.stem}
    save_checkpoint({"meta": meta, "state_dict": state, "message_hub": hub.state_dict()}, str(path))


@pytest.fixture(scope="module")
def lut_checkpoint(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = _perturbed_state(build_tiny_lut(), seed=0)
    assert any(k.startswith("teacher.backbone.") for k in state)
    path = tmp_path_factory.mktemp("ckpt") / "lut_tiny.pth"
    _save_like_the_runner(state, path)
    return path, state


@pytest.fixture(scope="module")
def lut_simmim_checkpoint(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    model = MODELS.build(tiny_lut_simmim_cfg())
    model.init_weights()
    state = _perturbed_state(model, seed=1)
    path = tmp_path_factory.mktemp("ckpt") / "lut_simmim_tiny.pth"
    _save_like_the_runner(state, path)
    return path, state


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _tiny_finetune(name: str, checkpoint: Path, prefix: str, **extra):
    cfg = load(name)
    cfg.merge_from_dict(
        {
            "model.backbone.arch": dict(TINY_ARCH),
            "model.backbone.img_size": 32,
            "model.backbone.patch_size": 4,
            "model.backbone.init_cfg.checkpoint": str(checkpoint),
            "model.backbone.init_cfg.prefix": prefix,
            "model.head.in_channels": 64,
            **extra,
        }
    )
    torch.manual_seed(123)
    model = MODELS.build(cfg.model)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()
    return model, before


def _assert_loaded(model, before, expected: dict[str, torch.Tensor], new_keys: set[str]):
    after = model.backbone.state_dict()
    assert set(after) - set(expected) == new_keys
    for key, value in expected.items():
        if key not in after:
            continue
        assert torch.equal(after[key], value), f"{key} was not loaded from the checkpoint"
        if value.dtype.is_floating_point:
            assert not torch.equal(before[key], value), f"{key}: init equals checkpoint"


@pytest.mark.parametrize("name", FINETUNE_FROM_MAE_FLAVOUR)
@pytest.mark.parametrize("prefix", ["backbone.", "teacher.backbone."])
def test_finetune_loads_every_encoder_tensor(name, prefix, lut_checkpoint):
    path, state = lut_checkpoint
    model, before = _tiny_finetune(name, path, prefix)
    encoder = _prefixed(state, prefix)
    # MAE's fine-tuning recipe: no final norm (ln1), a new fc norm (ln2) on pooled tokens.
    assert set(encoder) - set(model.backbone.state_dict()) == {"ln1.weight", "ln1.bias"}
    _assert_loaded(model, before, encoder, new_keys={"ln2.weight", "ln2.bias"})
    # Student and teacher weights differ, so the prefix really picks one of them.
    other = "teacher.backbone." if prefix == "backbone." else "backbone."
    key = "layers.0.attn.qkv.weight"
    assert not torch.equal(model.backbone.state_dict()[key], state[other + key])


def test_linear_probe_loads_every_encoder_tensor(lut_checkpoint):
    path, state = lut_checkpoint
    model, before = _tiny_finetune(
        "lut_vitb_linear_90e.py",
        path,
        "backbone.",
        **{"model.backbone.frozen_stages": 2, "model.neck.input_features": 64},
    )
    encoder = _prefixed(state, "backbone.")
    assert set(encoder) == set(model.backbone.state_dict())
    _assert_loaded(model, before, encoder, new_keys=set())
    assert not any(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize("prefix", ["backbone.", "teacher.backbone."])
def test_simmim_finetune_loads_every_encoder_tensor(prefix, lut_simmim_checkpoint):
    path, state = lut_simmim_checkpoint
    model, before = _tiny_finetune(
        "simmim_vitb_finetune_100e.py", path, prefix, **{"model.head.in_channels": SIMMIM_DIM}
    )
    encoder = _prefixed(state, prefix)
    after = model.backbone.state_dict()
    num_layers = len(model.backbone.layers)
    # Pre-training-only tensors: mask token, final norm, the shared position-bias module.
    assert set(encoder) - set(after) == {
        "mask_token",
        "ln1.weight",
        "ln1.bias",
        "rel_pos_bias.relative_position_bias_table",
        "rel_pos_bias.relative_position_index",
    }
    # Each block starts from the shared relative position bias table.
    shared = encoder["rel_pos_bias.relative_position_bias_table"]
    index = encoder["rel_pos_bias.relative_position_index"]
    expanded = {}
    for i in range(num_layers):
        expanded[f"layers.{i}.attn.relative_position_bias_table"] = shared
        expanded[f"layers.{i}.attn.relative_position_index"] = index
    _assert_loaded(model, before, {**encoder, **expanded}, new_keys={"ln2.weight", "ln2.bias"})
