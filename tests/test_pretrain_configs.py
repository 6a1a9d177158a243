"""The pre-training configs load, build, and carry the paper's recipe (METHOD.md)."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmpretrain.registry import MODELS

CFG_DIR = ROOT / "configs" / "mmpretrain"
# name -> (embed dims, depth, heads, epochs)
PRETRAIN = {
    "lut_vits_400e.py": (384, 12, 6, 400),
    "lut_vitb_400e.py": (768, 12, 12, 400),
    "lut_vitb_800e.py": (768, 12, 12, 800),
    "lut_vitb_1600e.py": (768, 12, 12, 1600),
    "lut_vitl_400e.py": (1024, 24, 16, 400),
}


def _load(name: str) -> Config:
    return Config.fromfile(str(CFG_DIR / name))


@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_recipe(name):
    dims, depth, heads, epochs = PRETRAIN[name]
    cfg = _load(name)
    assert cfg.custom_imports["imports"] == ["lut_plugin"]
    m = cfg.model
    assert m.type == "LUT" and m.backbone.type == "LUTViT"
    assert m.backbone.mask_ratio == 0.75 and m.backbone.patch_size == 16
    assert (m.neck.embed_dim, m.neck.decoder_embed_dim, m.neck.decoder_depth) == (dims, 512, 8)
    assert m.neck.decoder_num_heads == 16
    assert m.head.norm_pix is True
    for part in (m.projector, m.predictor):
        assert (part.in_channels, part.hid_channels, part.num_layers) == (dims, 4096, 2)
        assert (part.norm, part.act) == ("syncbn", "relu")
    assert (m.w_mim, m.w_bc, m.base_momentum, m.end_momentum) == (1.0, 0.25, 0.996, 1.0)
    opt = cfg.optim_wrapper
    assert opt.type == "AmpOptimWrapper"
    assert opt.optimizer.type == "AdamW" and tuple(opt.optimizer.betas) == (0.9, 0.95)
    assert opt.optimizer.lr == pytest.approx(2.4e-3) and opt.optimizer.weight_decay == 0.05
    assert opt.paramwise_cfg.custom_keys["bias"]["decay_mult"] == 0.0
    assert opt.paramwise_cfg.custom_keys["pos_embed"]["decay_mult"] == 0.0
    assert cfg.train_dataloader.batch_size * 8 == 4096
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ("LinearLR", 40)
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max) == (
        "CosineAnnealingLR",
        40,
        epochs,
        epochs - 40,
    )
    assert cfg.train_cfg.max_epochs == epochs
    # No hook or model wrapper updates the teacher: LUT does after each optimiser step.
    assert [h.type for h in cfg.custom_hooks] == ["LUTFiniteCheckHook"]
    assert "model_wrapper_cfg" not in cfg
    assert cfg.train_dataloader.drop_last is True
    # two views per image: more workers than the base's 8, pinned batches, non-blocking copy
    loader = cfg.train_dataloader
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (12, True, True)
    assert cfg.data_preprocessor.non_blocking is True
    assert cfg.data_preprocessor.type == "SelfSupDataPreprocessor"
    assert opt.optimizer.fused is True
    (views,) = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == "MultiView"]
    assert views.num_views == [1, 1]


@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_builds_with_the_right_encoder(name):
    dims, depth, heads, _ = PRETRAIN[name]
    cfg = _load(name)
    # Parameters on the meta device: the architecture without the memory (ViT-L is big).
    with torch.device("meta"):
        model = MODELS.build(cfg.model)
    assert model.backbone.embed_dims == dims and len(model.backbone.layers) == depth
    assert model.backbone.layers[0].attn.num_heads == heads
    assert model.backbone.num_patches == 196 and model.backbone.num_keep == 49
    teacher_keys = {k for k in model.state_dict() if k.startswith("teacher.backbone.")}
    student_keys = {k for k in model.state_dict() if k.startswith("backbone.")}
    assert {k.removeprefix("teacher.") for k in teacher_keys} == student_keys


def test_toy_config_builds_and_runs_one_step():
    cfg = _load("lut_vit-tiny_toy_cpu.py")
    assert cfg.optim_wrapper.type == "OptimWrapper"
    model = MODELS.build(cfg.model)
    model.init_weights()
    x = [torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)]
    losses = model.loss(x)
    assert set(losses) == {"loss_mim", "loss_bc"}
    assert all(torch.isfinite(v) for v in losses.values())


# 40 GB variants: name -> (the config it accumulates, batch per GPU, accumulated iterations)
FIT_40GB = {
    "lut_vits_400e_40gb.py": ("lut_vits_400e.py", 256, 2),
    "lut_vitb_400e_40gb.py": ("lut_vitb_400e.py", 128, 4),
    "lut_vitl_400e_40gb.py": ("lut_vitl_400e.py", 128, 4),
}


@pytest.mark.parametrize("name", sorted(FIT_40GB))
def test_40gb_variant_keeps_the_effective_batch_and_everything_else(name):
    from test_ablation_configs import without

    base_name, batch, accumulation = FIT_40GB[name]
    cfg, base = _load(name), _load(base_name)
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.optim_wrapper.accumulative_counts == accumulation
    assert batch * accumulation * 8 == 4096 == base.train_dataloader.batch_size * 8
    # mmengine's --auto-scale-lr divides GPUs x batch_size (accumulation ignored) by this
    assert cfg.auto_scale_lr.base_batch_size * accumulation == base.auto_scale_lr.base_batch_size
    keys = ("train_dataloader.batch_size", "optim_wrapper.accumulative_counts", "auto_scale_lr")
    assert without(cfg, *keys) == without(base, *keys)


@pytest.mark.filterwarnings("ignore:Detected call of `scheduler.step()` before")
def test_accumulation_keeps_lr_and_momentum_the_same_functions_of_progress():
    """Schedulers count data iterations: with 4x as many per epoch and a step every 4th,
    each optimiser step sees the lr and teacher momentum of the same point of training,
    to within one step of the 4096-batch run's schedule."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    from lut_plugin.core import cosine_momentum

    def lrs(cfg, epoch_length):
        model = torch.nn.Linear(2, 2)
        optim_cfg = cfg.optim_wrapper.to_dict()
        optim_cfg.update(type="OptimWrapper")
        optim_cfg.pop("loss_scale", None)
        wrapper = build_optim_wrapper(model, optim_cfg)
        schedulers = [
            PARAM_SCHEDULERS.build(
                s, default_args=dict(optimizer=wrapper, epoch_length=epoch_length)
            )
            for s in cfg.param_scheduler
        ]
        values = []
        for _ in range(cfg.train_cfg.max_epochs * epoch_length):
            values.append(wrapper.get_lr()["lr"][0])
            for s in schedulers:
                s.step()
        return values

    base, acc = _load("lut_vitb_400e.py"), _load("lut_vitb_400e_40gb.py")
    steps_per_epoch, a = 2, acc.optim_wrapper.accumulative_counts
    base_lr, acc_lr = lrs(base, steps_per_epoch), lrs(acc, steps_per_epoch * a)
    steps = len(base_lr)
    stepping = [a * j + a - 1 for j in range(steps)]  # data iterations that step
    lr_tol = max(abs(x - y) for x, y in zip(base_lr, base_lr[1:]))
    assert max(abs(acc_lr[k] - base_lr[j]) for j, k in enumerate(stepping)) <= lr_tol
    m_base = [cosine_momentum(j, steps) for j in range(steps)]
    m_acc = [cosine_momentum(k, steps * a) for k in stepping]
    m_tol = max(abs(x - y) for x, y in zip(m_base, m_base[1:]))
    assert max(abs(x - y) for x, y in zip(m_base, m_acc)) <= m_tol
    assert m_acc[-1] == m_base[-1] == 1.0 and m_base[0] == 0.996


ALL_MMPRETRAIN = sorted(p.name for p in CFG_DIR.glob("*.py"))


def test_every_config_is_covered():
    """A new config file cannot slip past the build test below."""
    assert len(ALL_MMPRETRAIN) >= 22 and set(PRETRAIN) | set(FIT_40GB) <= set(ALL_MMPRETRAIN)


@pytest.mark.parametrize("name", ALL_MMPRETRAIN)
def test_every_config_loads_and_builds(name):
    cfg = _load(name)
    # Only pure upstream baselines (mmpretrain's own MAE) may do without the plugin.
    if cfg.model.type != "MAE":
        assert cfg.custom_imports["imports"] == ["lut_plugin"]
    assert cfg.default_scope == "mmpretrain"
    with torch.device("meta"):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", ["lut_vitb_400e.py", "lut_vit-tiny_toy_cpu.py"])
def test_no_weight_decay_on_biases_norms_and_tokens(name):
    """METHOD.md: weight decay 0.05, none on biases, norms (BN in the heads too), pos/cls tokens."""
    from conftest import build_tiny_lut
    from mmengine.optim import build_optim_wrapper

    cfg = _load(name)
    optim_cfg = cfg.optim_wrapper.to_dict()
    optim_cfg.update(type="OptimWrapper")
    optim_cfg.pop("loss_scale", None)
    model = build_tiny_lut()
    groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
    params = dict(model.named_parameters())
    decay = {}
    for group in groups:
        for p in group["params"]:
            name_ = next(n for n, q in params.items() if q is p)
            decay[name_] = group["weight_decay"]
    assert set(decay) == {n for n, p in params.items() if p.requires_grad}  # no teacher params
    for n, wd in decay.items():
        no_decay = params[n].ndim == 1 or n.endswith(("cls_token", "pos_embed", "mask_token"))
        assert wd == (0.0 if no_decay else 0.05), n
    assert decay["projector.mlp.layers.1.weight"] == 0.0  # a BatchNorm weight


def test_the_frozen_teacher_is_named_once_and_the_groups_are_mmengines(monkeypatch):
    """``SkipFrozenOptimWrapperConstructor``: mmengine's groups, one line for the teacher."""
    from conftest import build_tiny_lut
    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.optimizer import default_constructor

    from lut_plugin.mmpretrain.engine import optim_wrapper_constructor

    logged = []
    for module in (default_constructor, optim_wrapper_constructor):
        monkeypatch.setattr(module, "print_log", lambda msg, *a, **k: logged.append(msg))
    cfg = _load("lut_vitb_400e.py").optim_wrapper.to_dict()
    assert cfg["constructor"] == "SkipFrozenOptimWrapperConstructor"
    cfg.update(type="OptimWrapper", optimizer=dict(cfg["optimizer"], fused=False))
    cfg.pop("loss_scale")
    model = build_tiny_lut()
    n_teacher = len(list(model.teacher.parameters()))

    ours = build_optim_wrapper(model, cfg).optimizer.param_groups
    about_teacher = [m for m in logged if "teacher" in m]
    assert about_teacher == [f"teacher: {n_teacher} frozen tensors, not optimised"]
    logged.clear()
    default = build_optim_wrapper(model, {**cfg, "constructor": "DefaultOptimWrapperConstructor"})
    skipped = [m for m in logged if m.startswith("teacher.") and "requires_grad=False" in m]
    assert len(skipped) == n_teacher  # what the default constructor logs instead
    default = default.optimizer.param_groups
    assert len(ours) == len(default)
    for a, b in zip(ours, default, strict=True):
        assert all(p is q for p, q in zip(a.pop("params"), b.pop("params"), strict=True))
        assert a == b
