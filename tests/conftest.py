"""Shared fixtures: tiny LUT models that run in milliseconds on a CPU; one compute thread per
core and xdist worker; mmengine's config formatting remembered."""

from __future__ import annotations

import copy
import functools
import os
import sys
from pathlib import Path

import mmengine.config.config
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lut_plugin  # noqa: E402,F401  (registers the components)

GOLDEN = ROOT / "tests" / "data" / "golden" / "lut_step_tiny.pt"

# Each pytest-xdist worker computes on its share of the cores: with two intra-op threads in
# each of two workers on two cores, OpenMP threads wait for each other (a toy LUT step took
# 0.3 s on one thread, 1.5-9 s on two, on a loaded 2-core machine).
torch.set_num_threads(
    max(1, torch.get_num_threads() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
)


_yapf_format = mmengine.config.config.FormatCode


@functools.lru_cache(maxsize=64)
def _format_cached(text: str, style: tuple) -> tuple[str, bool]:
    return _yapf_format(text, style_config=dict(style))


def _format_code(text: str, style_config=None, **kwargs) -> tuple[str, bool]:
    """yapf's ``FormatCode``, remembered: mmengine formats the whole config (about a second)
    for the log, the dumped config, the message hub and every checkpoint's meta."""
    if kwargs or not isinstance(style_config, dict):
        return _yapf_format(text, style_config=style_config, **kwargs)
    return _format_cached(text, tuple(sorted(style_config.items())))


mmengine.config.config.FormatCode = _format_code


def tiny_lut_cfg(**overrides) -> dict:
    """The golden step's architecture: 32 px, patch 4, 64-d x 2 blocks, 32-d decoder."""
    cfg = dict(
        type="LUT",
        backbone=dict(
            type="LUTViT",
            arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256),
            img_size=32,
            patch_size=4,
            mask_ratio=0.75,
        ),
        neck=dict(
            type="MAEPretrainDecoder",
            num_patches=64,
            patch_size=4,
            in_chans=3,
            embed_dim=64,
            decoder_embed_dim=32,
            decoder_depth=1,
            decoder_num_heads=4,
            mlp_ratio=4,
        ),
        head=dict(
            type="MAEPretrainHead",
            norm_pix=True,
            patch_size=4,
            loss=dict(type="PixelReconstructionLoss", criterion="L2"),
        ),
        projector=dict(type="LUTProjectionMLP", in_channels=64, hid_channels=128),
        predictor=dict(type="LUTProjectionMLP", in_channels=64, hid_channels=128),
        w_mim=1.0,
        w_bc=0.25,
    )
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return copy.deepcopy(cfg)


def build_tiny_lut(**overrides):
    from mmpretrain.registry import MODELS

    model = MODELS.build(tiny_lut_cfg(**overrides))
    model.init_weights()
    return model


def _mmpretrain_scope():
    from mmengine.registry import DefaultScope

    return DefaultScope.overwrite_default_scope("mmpretrain")


@pytest.fixture(autouse=True)
def _mmpretrain_default_scope():
    """Each test starts in mmpretrain's scope, whatever scope an earlier test left behind."""
    with _mmpretrain_scope():
        yield


@pytest.fixture(autouse=True, scope="module")
def _mmpretrain_default_scope_for_module_fixtures():
    """The same for module-scoped fixtures, which are set up before any test's own."""
    with _mmpretrain_scope():
        yield


@pytest.fixture(scope="module")
def golden():
    """The reference LUT step (tests/data), shared by the golden-step and lightly tests."""
    if not GOLDEN.exists():
        pytest.fail(f"golden file missing: {GOLDEN}")
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture
def tiny_lut():
    return build_tiny_lut()


def pytest_sessionfinish(session, exitstatus):
    """Fail a run in which no test passed (everything skipped or deselected)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if exitstatus == 0 and passed == 0:
        session.exitstatus = 1
