"""Every config: it loads, its model builds, and its recipe is one row of RECIPES (METHOD.md)."""

from __future__ import annotations

import copy
import functools
import math
import re
from unittest import mock

import mmengine.config.utils
import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner.checkpoint import save_checkpoint

# fmt: off
S, B, L, TINY = (384, 12, 6), (768, 12, 12), (1024, 24, 16), (96, 4, 4)  # dims, blocks, heads
# METHOD.md pre-training: mmpretrain's MAE recipe (8 GPUs x 512 = 4096 images, lr 1.5e-4 x
# 4096 / 256, 40 warm-up epochs then cosine, mask 0.75, decoder 512-d x 8 blocks x 16 heads,
# no weight decay on biases, norms and tokens) ...
MAE = dict(model=("MAE", "MAEViT"), batch=(512, 1), lr_batch=4096, warmup=40,
           optim=("AdamW", 1.5e-4 * 4096 / 256, (0.9, 0.95), 0.05), decay="CosineAnnealingLR",
           mask=0.75, decoder=(512, 8, 16), norm_pix=True, amp=True,
           no_decay=("cls_token", "pos_embed", "mask_token"))
# ... plus LUT's branch: w_mim 1, w_bc 0.25, EMA 0.996 -> 1, heads 4096 wide, SyncBN, ReLU
LUT = dict(MAE, model=("LUT", "LUTViT"), w=(1.0, 0.25), momentum=(0.996, 1.0),
           heads=(4096, 2, "syncbn", "relu"))
# supplementary Table A: SimMIM's ViT-B recipe (lr 1e-4 per 512 images, batch 2048), 100 epochs
SIMMIM = dict(model=("SimMIM", "LUTSimMIMViT"), arch=B, batch=(256, 1), lr_batch=2048,
              optim=("AdamW", 1e-4 * 2048 / 512, (0.9, 0.999), 0.05), warmup=10,
              decay="CosineAnnealingLR", epochs=100, mask=0.6, clip=5.0, amp=True,
              no_decay=("cls_token",))
# Table D, fine-tuning: 8 x 128 = 1024 images, lr = base lr x 1024 / 256 (ft_lr)
FT = dict(model=("ImageClassifier", "VisionTransformer"), batch=(128, 1), warmup=5,
          decay="CosineAnnealingLR", drop_path=0.1, mix={"Mixup": 0.8, "CutMix": 1.0},
          smooth=0.1, randaug=(9, 0.5), no_decay=("cls_token", "pos_embed"))
def ft_lr(lr): return ("AdamW", lr, (0.9, 0.999), 0.05)  # noqa: E704
# mmpretrain's MAE linear probe: LARS lr 6.4 at 8 x 2048, 10 warm-up epochs, 90 epochs
LINEAR = dict(model=("ImageClassifier", "VisionTransformer"), arch=B, batch=(2048, 1),
              optim=("LARS", 6.4, None, 0.0), warmup=10, decay="CosineAnnealingLR", epochs=90,
              frozen=12, init="lut_vitb_400e/epoch_400")
# Table E: UperNet, AdamW lr 1e-4, layer decay 0.65, 8 x 2 images, 1500 warm-up, poly to 160k
SEG = dict(model=("EncoderDecoder", "LUTMAE"), batch=(2, 1), optim=ft_lr(1e-4), layer_decay=0.65,
           warmup=1500, decay="PolyLR", iters=160000, crop=(512, 512), drop_path=0.1, amp=True,
           classes=150, no_decay=(), features=((3, 5, 7, 11), False))  # blocks' raw outputs
# the CPU demo (one process): these values keep the main job's losses (README)
TOY = dict(LUT, arch=TINY, batch=(64, 1), lr_batch=64, epochs=50, warmup=3, amp=False,
           optim=("AdamW", 1.5e-4 * 64 / 256 * 20, (0.9, 0.95), 0.05), decoder=(64, 2, 4),
           heads=(1024, 2, "bn", "relu"))
TOY_CKPT = "lut_vit-tiny_toy_cpu/epoch_50"  # the CPU walkthroughs start from the demo's run
NO_MIM = ("decoder", "norm_pix")  # L_BC only: no decoder, no reconstruction head
NO_BC = ("w", "momentum", "heads")

PRETRAINING = {
    "lut_vits_400e.py": dict(LUT, arch=S, epochs=400),
    "lut_vits_400e_40gb.py": dict(LUT, arch=S, epochs=400, batch=(256, 2), lr_batch=2048),
    "lut_vitb_400e.py": dict(LUT, arch=B, epochs=400),
    "lut_vitb_400e_40gb.py": dict(LUT, arch=B, epochs=400, batch=(128, 4), lr_batch=1024),
    "lut_vitb_400e_photometric-on-gpu.py": dict(LUT, arch=B, epochs=400),
    "lut_vitb_800e.py": dict(LUT, arch=B, epochs=800),
    "lut_vitb_1600e.py": dict(LUT, arch=B, epochs=1600),
    "lut_vitl_400e.py": dict(LUT, arch=L, epochs=400),
    "lut_vitl_400e_40gb.py": dict(LUT, arch=L, epochs=400, batch=(128, 4), lr_batch=1024),
    # Table B: w_bc; Table C: 100 epochs, L_BC only, and the MAE baseline
    "lut_vitb_400e_wbc0.1.py": dict(LUT, arch=B, epochs=400, w=(1.0, 0.1)),
    "lut_vitb_400e_wbc0.5.py": dict(LUT, arch=B, epochs=400, w=(1.0, 0.5)),
    "lut_vitb_400e_wbc1.0.py": dict(LUT, arch=B, epochs=400, w=(1.0, 1.0)),
    "lut_vitb_100e.py": dict(LUT, arch=B, epochs=100),
    "lut_vitb_100e_wmim0.py": dict({k: v for k, v in LUT.items() if k not in NO_MIM},
                                   arch=B, epochs=100, w=(0.0, 0.25), decoder=None),
    "mae_vitb_100e.py": dict(MAE, arch=B, epochs=100),
    # Table A; and the branch on a third MIM method, mmpretrain's MFF (MAE's recipe, 300 epochs)
    "simmim_vitb_100e.py": SIMMIM,
    "lut-simmim_vitb_100e.py": dict(SIMMIM, model=("LUTSimMIM", "LUTSimMIMViT"), w=(1.0, 0.25),
                                    momentum=(0.996, 1.0), heads=(4096, 2, "syncbn", "relu")),
    "lut-mff_vitb_300e.py": dict(LUT, model=("LUT", "LUTMFFViT"), arch=B, epochs=300),
    # the CPU demo and its MAE baseline
    "lut_vit-tiny_toy_cpu.py": TOY,
    "mae_vit-tiny_toy_cpu.py": dict({k: v for k, v in TOY.items() if k not in NO_BC},
                                    model=("MAE", "MAEViT")),
}
EVALUATION = {  # Table D (S: layer decay 0.75, B/L: 0.65), SimMIM's recipe for Table A, probes
    "lut_vits_finetune_300e.py": dict(FT, arch=S, optim=ft_lr(5e-4 * 4), layer_decay=0.75,
                                      epochs=300, init="lut_vits_400e/epoch_400"),
    "lut_vitb_finetune_100e.py": dict(FT, arch=B, optim=ft_lr(2.5e-4 * 4), layer_decay=0.65,
                                      epochs=100, init="lut_vitb_400e/epoch_400"),
    "lut_vitl_finetune_50e.py": dict(FT, arch=L, optim=ft_lr(1e-3 * 4), layer_decay=0.65,
                                     epochs=50, init="lut_vitl_400e/epoch_400"),
    "simmim_vitb_finetune_100e.py": dict(FT, model=("ImageClassifier", "BEiTViT"), arch=B,
                                         optim=ft_lr(1.25e-3 * 1024 / 512), layer_decay=0.65,
                                         warmup=20, epochs=100, clip=5.0,
                                         init="lut-simmim_vitb_100e/epoch_100"),
    "lut_vitb_linear_90e.py": LINEAR,
    "lut_vitb_linear-meanpool_90e.py": dict(LINEAR,
                                            neck=("GlobalAveragePooling", "ClsBatchNormNeck")),
    "lut_vit-tiny_finetune_toy_cpu.py": dict(FT, arch=TINY, batch=(64, 1), layer_decay=0.65,
                                             optim=ft_lr(2.5e-4 * 64 / 256 * 32), epochs=50,
                                             init=TOY_CKPT),
}
UPERNET = "lut_vit-{}16_upernet_8xb2-amp-160k_ade20k-512x512.py"
SEGMENTATION = {
    UPERNET.format("s"): dict(SEG, arch=S, init="lut_vits_400e/epoch_400"),
    UPERNET.format("b"): dict(SEG, arch=B, init="lut_vitb_400e/epoch_400"),
    UPERNET.format("l"): dict(SEG, arch=L, init="lut_vitl_400e/epoch_400",
                              features=((7, 11, 15, 23), False)),
    "lut_vit-tiny_upernet_toy-ade_cpu.py": dict(SEG, arch=TINY, warmup=2, iters=8, crop=(64, 64),
                                                amp=False, classes=6, init=TOY_CKPT,
                                                features=((0, 1, 2, 3), False)),
}
RECIPES = {**{f"mmpretrain/{k}": v for k, v in {**PRETRAINING, **EVALUATION}.items()},
           **{f"mmseg/{k}": v for k, v in SEGMENTATION.items()}}
# fmt: on
METAFILE = yaml.safe_load((ROOT / "configs" / "mmpretrain" / "metafile.yml").read_text())["Models"]


def _pipeline(cfg: Config) -> dict:
    return {t["type"]: t for t in cfg.train_dataloader.dataset.pipeline}


def _t(node, *keys: str) -> tuple:
    return tuple(node[k] for k in keys)


# fmt: off
# what each key of a recipe reads from the config `c` and the model built from it `m`
FACTS = {
    "model": lambda c, m: (type(m).__name__, type(m.backbone).__name__),
    "arch": lambda c, m: (m.backbone.embed_dims, len(m.backbone.layers),
                          m.backbone.layers[0].attn.num_heads),
    "batch": lambda c, m: (c.train_dataloader.batch_size,
                           c.optim_wrapper.get("accumulative_counts", 1)),
    "lr_batch": lambda c, m: c.auto_scale_lr.base_batch_size,
    "optim": lambda c, m: _t({"betas": None, **c.optim_wrapper.optimizer},
                             "type", "lr", "betas", "weight_decay"),
    "epochs": lambda c, m: c.train_cfg.max_epochs,
    "iters": lambda c, m: c.train_cfg.max_iters,
    "warmup": lambda c, m: c.param_scheduler[0].end,
    "decay": lambda c, m: c.param_scheduler[-1].type,
    "mask": lambda c, m: _pipeline(c).get("SimMIMMaskGenerator", m.backbone).mask_ratio,
    "w": lambda c, m: (m.w_mim, m.w_bc),
    "momentum": lambda c, m: _t(c.model, "base_momentum", "end_momentum"),
    "decoder": lambda c, m: c.model.neck and _t(
        c.model.neck, "decoder_embed_dim", "decoder_depth", "decoder_num_heads"),
    "heads": lambda c, m: {_t(p, "hid_channels", "num_layers", "norm", "act")
                           for p in (c.model.projector, c.model.predictor)}.pop(),
    "norm_pix": lambda c, m: c.model.head.norm_pix,
    "amp": lambda c, m: c.optim_wrapper.type == "AmpOptimWrapper",
    "clip": lambda c, m: c.optim_wrapper.clip_grad.max_norm,
    "layer_decay": lambda c, m: c.optim_wrapper.paramwise_cfg.layer_decay_rate,
    "drop_path": lambda c, m: c.model.backbone.drop_path_rate,
    "mix": lambda c, m: {a.type: a.alpha for a in c.model.train_cfg.augments},
    "smooth": lambda c, m: c.model.head.loss.label_smooth_val,
    "randaug": lambda c, m: _t(_pipeline(c)["RandAugment"], "magnitude_level", "magnitude_std"),
    "frozen": lambda c, m: m.backbone.frozen_stages,
    "neck": lambda c, m: tuple(n.type for n in c.model.neck),
    "crop": lambda c, m: tuple(c.crop_size),
    "classes": lambda c, m: m.decode_head.num_classes,
    "features": lambda c, m: (tuple(m.backbone.out_indices), m.backbone.final_norm),
    "init": lambda c, m: re.fullmatch(r"work_dirs/(.+)\.pth", c.model.get("pretrained")
                                      or c.model.backbone.init_cfg.checkpoint).group(1),
}
# fmt: on


def _round(v):
    """Floats to 10 significant digits (2.5e-4 * 4 == 1e-3), recursively."""
    if isinstance(v, float):
        return float(f"{v:.10g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return tuple(map(_round, v)) if isinstance(v, (tuple, list)) else v


@pytest.fixture(scope="module", autouse=True)
def _read_metafiles_once():
    """mmengine reads every metafile of mmpretrain (85) for each `mmpretrain::` base it meets."""
    with mock.patch.object(
        mmengine.config.utils, "load", functools.cache(mmengine.config.utils.load)
    ):
        yield


@functools.cache
def load(name: str) -> Config:
    return Config.fromfile(ROOT / "configs" / name)


@functools.cache
def build(name: str) -> torch.nn.Module:
    """The config's model at full size on the meta device: the architecture without memory."""
    cfg, linspace = load(name), torch.linspace  # mmseg's ViTs call .item() on a linspace
    with mock.patch("torch.linspace", lambda *a, **k: linspace(*a, **k, device="cpu")):
        with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device("meta"):
            return MODELS.build(copy.deepcopy(cfg.model))


def test_every_config_has_a_recipe():
    on_disk = {str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").glob("mm*/*.py")}
    assert on_disk == set(RECIPES)
    indexed = {m["Config"].removeprefix("configs/") for m in METAFILE}  # LUT's models
    baselines = {
        f"mmpretrain/{n}.py" for n in ("mae_vitb_100e", "simmim_vitb_100e", "mae_vit-tiny_toy_cpu")
    }
    assert on_disk - indexed == baselines | {f"mmseg/{n}" for n in SEGMENTATION}
    assert indexed <= on_disk


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_config_loads_builds_and_follows_its_recipe(name):
    cfg, model, row = load(name), build(name), RECIPES[name]
    recipe = {k: v for k, v in row.items() if k != "no_decay"}  # no_decay: test_param_groups
    assert _round({k: FACTS[k](cfg, model) for k in recipe}) == _round(recipe)
    assert cfg.default_scope == name.split("/")[0] and "lut_plugin" in cfg.custom_imports.imports
    assert cfg.runner_type == "SafeResumeRunner"  # configs/_base_/reliability_runtime.py
    # the schedulers follow each other to the end of the run
    steps, length = cfg.param_scheduler, cfg.train_cfg.get("max_epochs") or cfg.train_cfg.max_iters
    assert [s.begin for s in steps[1:]] == [s.end for s in steps[:-1]] and steps[-1].end == length
    assert steps[-1].get("T_max", length - steps[-1].begin) == length - steps[-1].begin
    layers = cfg.optim_wrapper.get("paramwise_cfg", {}).get("num_layers")
    assert layers in (None, len(model.backbone.layers))
    if "init" in row:  # the checkpoint that the pre-training config's run writes and keeps
        run, epoch = re.fullmatch(r"(.+)/epoch_(\d+)", row["init"]).groups()
        pre = load(f"mmpretrain/{run}.py")
        assert pre.train_cfg.max_epochs == int(epoch)
        assert int(epoch) % pre.default_hooks.checkpoint.interval == 0
    gpus = 1 if name.endswith("_cpu.py") else 8  # the names' "8xb..."
    if gpus == 1:  # torch's SyncBN has no CPU kernel
        assert all(type(m).__name__ != "SyncBatchNorm" for m in model.modules())
    for entry in (m for m in METAFILE if m["Config"] == f"configs/{name}"):
        batch, accumulation = FACTS["batch"](cfg, model)
        assert entry["Metadata"]["Epochs"] == length
        assert entry["Metadata"]["Batch Size"] == gpus * batch * accumulation


@pytest.mark.parametrize("name", sorted(n for n, r in RECIPES.items() if "no_decay" in r))
def test_param_groups(name):
    """The built optimiser: lr x decay^(depth + 1 - layer id) where the recipe decays by layer
    (embeddings 0, block i i + 1, the rest depth + 1); no weight decay on 1-D parameters (biases,
    norms: the heads' BN too) nor the recipe's tokens; the frozen teacher not optimised."""
    cfg, model, row = load(name), build(name), RECIPES[name]
    optim = cfg.optim_wrapper.to_dict()
    optim.update(type="OptimWrapper", optimizer={**optim["optimizer"], "fused": False})
    optim.pop("loss_scale", None)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        groups = build_optim_wrapper(model, optim).optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    _, lr, _, wd = row["optim"]
    depth, decay = len(model.backbone.layers), row.get("layer_decay", 1.0)
    seen = []
    for group in groups:
        for param in group["params"]:
            name_ = names[id(param)]
            seen.append(name_)
            ids = re.match(r"backbone\.(?:layers\.(\d+)\.|patch_embed|cls_token|pos_embed)", name_)
            layer_id = (int(ids[1]) + 1 if ids[1] else 0) if ids else depth + 1
            assert math.isclose(group["lr"], lr * decay ** (depth + 1 - layer_id)), name_
            no_decay = param.ndim == 1 or name_.endswith(row["no_decay"])
            assert group["weight_decay"] == (0.0 if no_decay else wd), name_
    assert sorted(seen) == sorted(n for n, p in model.named_parameters() if p.requires_grad)


# -- the evaluation configs load a LUT checkpoint: every encoder tensor, from the chosen encoder
# fmt: off
TO_TINY = {"model.backbone.arch": dict(_delete_=True, embed_dims=96, num_layers=4, num_heads=4,
                                       feedforward_channels=384),
           "model.backbone.img_size": 32, "model.backbone.patch_size": 4}  # TINY's encoder
TINY_SIMMIM = {**TO_TINY, "model.backbone.mask_patch_size": 8, "model.neck.in_channels": 96,
               "model.neck.encoder_stride": 4, "model.head.patch_size": 4,
               "model.projector.in_channels": 96, "model.predictor.in_channels": 96}
LOADING = [(n, p) for n, r in sorted(RECIPES.items()) if "init" in r and n[:4] == "mmpr"
           for p in ("backbone.", "teacher.backbone.") if p == "backbone." or "vitb_f" in n]
# fmt: on


def _tiny(name: str, overrides: dict) -> torch.nn.Module:
    cfg = copy.deepcopy(load(name))
    cfg.merge_from_dict(overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, tuple[str, dict]]:
    """Checkpoints as the runner writes them (numpy meta, message hub) of the toy LUT and a toy
    LUT(SimMIM), every tensor moved away from its initial value."""
    out, gen = {}, torch.Generator().manual_seed(0)
    for flavour, over in [("lut_vit-tiny_toy_cpu", {}), ("lut-simmim_vitb_100e", TINY_SIMMIM)]:
        model = _tiny(f"mmpretrain/{flavour}.py", over)
        state = {k: v + torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
                 for k, v in model.state_dict().items()}  # fmt: skip
        hub = MessageHub("runner").state_dict()
        path = str(tmp_path_factory.mktemp(flavour) / "epoch_1.pth")
        save_checkpoint(
            {"meta": {"seed": np.int64(0)}, "state_dict": state, "message_hub": hub}, path
        )
        out[flavour] = path, state
    return out


@pytest.mark.parametrize("name, prefix", LOADING)
def test_evaluation_config_loads_the_encoder(name, prefix, checkpoints):
    """MAE's fine-tuning drops the final norm (ln1) for a new fc norm (ln2); SimMIM's gives each
    block the shared relative position bias; the linear probes load every tensor."""
    row, simmim = RECIPES[name], RECIPES[name]["model"][1] == "BEiTViT"
    path, state = checkpoints["lut-simmim_vitb_100e" if simmim else "lut_vit-tiny_toy_cpu"]
    over = {**TO_TINY, "model.backbone.init_cfg.checkpoint": path, "model.head.in_channels": 96,
            "model.backbone.init_cfg.prefix": prefix}  # fmt: skip
    if "frozen" in row:  # a linear probe: its BatchNorm neck, all blocks frozen
        over["model.backbone.frozen_stages"] = 4
        over["model.neck.1.input_features" if "neck" in row else "model.neck.input_features"] = 96
    encoder = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    unused = set() if "frozen" in row else {"ln1.weight", "ln1.bias"}
    for key in ["relative_position_bias_table", "relative_position_index"] if simmim else []:
        encoder |= {f"layers.{i}.attn.{key}": encoder[f"rel_pos_bias.{key}"] for i in range(4)}
        unused |= {"mask_token", f"rel_pos_bias.{key}"}
    after = _tiny(name, over).backbone.state_dict()
    assert set(encoder) - set(after) == unused
    assert set(after) - set(encoder) == (set() if "frozen" in row else {"ln2.weight", "ln2.bias"})
    for key in set(after) & set(encoder):
        assert torch.equal(after[key], encoder[key]), key
