"""View 2's photometric transforms on the device (``LUTPhotometricParams`` +
``LUTDataPreprocessor``): the same pixels as the CPU transform ``LUTPhotometricDistortion``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from PIL import Image, ImageFilter
from synthetic import synthetic_photo
from utils import HostSyncs

import lut_plugin  # noqa: F401  (registers the transforms and the preprocessor)
from lut_plugin.datasets import photometric
from lut_plugin.datasets import photometric_torch as pt
from lut_plugin.datasets.transforms import (
    LUTPhotometricDistortion,
    LUTPhotometricParams,
    lut_view_pipelines,
)

NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope("mmpretrain")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Eight natural-looking BGR images, 36 x 44 (saturated colours, flat areas, edges)."""
    return [np.ascontiguousarray(synthetic_photo(36, 44, s)[..., ::-1]) for s in range(8)]


def _batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _unbatch(batch: torch.Tensor) -> list[np.ndarray]:
    return list(batch.permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize(
    "name, factors",
    [
        ("adjust_brightness", [0.6, 0.75, 0.999, 1.0, 1.01, 1.2, 1.4, 0.0]),
        ("adjust_contrast", [0.6, 0.7, 0.9, 1.0, 1.1, 1.3, 1.4, 0.0]),
        ("adjust_saturation", [0.8, 0.85, 0.95, 1.0, 1.05, 1.15, 1.2, 0.0]),
        ("adjust_hue", [-0.5, -0.1, -0.03, 0.0, 0.004, 0.05, 0.1, 0.5]),
        ("gaussian_blur", [0.0, 0.1, 0.35, 0.8, 1.0, 1.37, 1.9, 2.0]),
        ("solarize", [0, 1, 64, 128, 128, 200, 255, 256]),
    ],
)
def test_each_operation_matches_the_cpu_one_per_image(photos, name, factors):
    """One factor per image in one batch; each image equals the CPU function's output."""
    out = _unbatch(getattr(pt, name)(_batch(photos), factors))
    for img, factor, got in zip(photos, factors, out, strict=True):
        want = getattr(photometric, name)(img, factor)
        assert np.array_equal(got, want), (name, factor, np.abs(got.astype(int) - want).max())


@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (5, 2), (7, 9)])
def test_blur_of_images_narrower_than_the_kernel(height, width):
    """Edge pixels repeated when the kernel reaches past both edges (PIL's pixels)."""
    rng = np.random.default_rng(height * width)
    images = rng.integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    radii = [0.0, 0.5, 1.3, 2.0]  # kernels 1, 3, 3 and 5 taps
    got = _unbatch(pt.gaussian_blur(_batch(list(images)), radii))
    for img, radius, out in zip(images, radii, got, strict=True):
        pil = Image.fromarray(img[..., ::-1].copy()).filter(ImageFilter.GaussianBlur(radius))
        assert np.array_equal(out, np.asarray(pil)[..., ::-1]), radius


def test_luma_and_grayscale_match_the_cpu_ones(photos):
    batch = _batch(photos)
    for img, y, g in zip(photos, pt.luma(batch), _unbatch(pt.grayscale(batch)), strict=True):
        assert np.array_equal(y[0].numpy(), photometric.luma(img))
        assert np.array_equal(g, photometric.grayscale(img))


def test_hue_shift_matches_on_every_colour():
    """All 2**24 colours as one 4096 x 4096 image (the device's tables are Pillow's own
    conversions; the CPU's are checked against torchvision on every colour too)."""
    values = np.arange(1 << 24, dtype=np.uint32)
    img = np.stack([values & 255, (values >> 8) & 255, values >> 16], -1).astype(np.uint8)
    img = img.reshape(4096, 4096, 3)
    got = _unbatch(pt.adjust_hue(_batch([img]), [-0.37]))[0]
    assert np.array_equal(got, photometric.adjust_hue(img, -0.37))


def _draws(photos: list[np.ndarray], seeds) -> tuple[list, list]:
    """For each seed: the CPU transform's output and LUTPhotometricParams' draw."""
    cpu, deferred = LUTPhotometricDistortion(), LUTPhotometricParams()
    outputs, params = [], []
    for seed in seeds:
        img = photos[seed % len(photos)]
        np.random.seed(seed)
        outputs.append(cpu(dict(img=img.copy()))["img"])
        np.random.seed(seed)
        result = deferred(dict(img=img.copy()))
        assert np.array_equal(result["img"], img)  # the image is left alone
        params.append(result["lut_photometric"])
    return outputs, params


def test_distort_matches_the_cpu_transform_for_the_same_draws(photos):
    seeds = range(60)
    outputs, params = _draws(photos, seeds)
    got = _unbatch(pt.distort(_batch([photos[s % len(photos)] for s in seeds]), params))
    for want, out in zip(outputs, got, strict=True):
        assert np.array_equal(out, want)
    # every branch was taken: each exclusive operation, jitter on and off, several orders
    assert {p["exclusive"] for p in params} == {"grayscale", "solarize", "blur"}
    assert 0 < sum(p["jitter"] is None for p in params) < len(params)
    assert len({tuple(p["jitter"][0]) for p in params if p["jitter"]}) > 5
    # plain Python numbers: they travel from the workers through PackInputs and collate
    jitter = next(p["jitter"] for p in params if p["jitter"])
    assert all(type(i) is int for i in jitter[0]) and all(type(f) is float for f in jitter[1:])


def test_distort_refuses_wrong_inputs(photos):
    _, params = _draws(photos, range(2))
    with pytest.raises(ValueError, match="uint8 images with N parameter draws"):
        pt.distort(_batch(photos[:2]).float(), params)
    with pytest.raises(ValueError, match="got torch.uint8 \\(3, 3, 36, 44\\) and 2 draws"):
        pt.distort(_batch(photos[:3]), params)
    with pytest.raises(ValueError, match="hue factors"):
        pt.adjust_hue(_batch(photos[:1]), [0.6])


def _packed(pipeline: list, files: list[str], seed: int) -> dict:
    np.random.seed(seed)
    return default_collate([Compose(pipeline)(dict(img_path=f)) for f in files])


def test_deferred_pipeline_and_preprocessor_give_the_cpu_pipelines_batch(tmp_path):
    """Same seed: the workers' deferred pipeline + LUTDataPreprocessor give the normalised
    views of the CPU pipeline + SelfSupDataPreprocessor, bit for bit."""
    files = []
    for seed in range(6):
        path = tmp_path / f"{seed}.jpg"
        Image.fromarray(synthetic_photo(60, 80, seed)).save(path, quality=90)
        files.append(str(path))
    cpu_pipeline = lut_view_pipelines(32)[2]
    deferred_pipeline = lut_view_pipelines(32, photometric_on_device=True)[2]
    upstream = MODELS.build(dict(type="SelfSupDataPreprocessor", **NORM))
    ours = MODELS.build(dict(type="LUTDataPreprocessor", **NORM))
    for seed in range(3):
        want = upstream(_packed(cpu_pipeline, files, seed), training=True)["inputs"]
        deferred = _packed(deferred_pipeline, files, seed)
        assert not torch.equal(
            deferred["inputs"][1], _packed(cpu_pipeline, files, seed)["inputs"][1]
        )
        with HostSyncs() as syncs:  # nothing the host would wait for on a GPU
            got = ours(copy.deepcopy(deferred), training=True)["inputs"]
        assert syncs.seen == []
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as inside AmpOptimWrapper
            got = ours(copy.deepcopy(deferred), training=True)["inputs"]
        assert torch.equal(got[1], want[1])
        # without parameter draws it is the upstream preprocessor
        plain = _packed(cpu_pipeline, files, seed)
        assert all(torch.equal(a, b) for a, b in zip(ours(plain, True)["inputs"], want))


def test_preprocessor_refuses_draws_without_two_views(photos):
    ours = MODELS.build(dict(type="LUTDataPreprocessor", **NORM))
    _, params = _draws(photos, range(2))
    samples = [DataSample(metainfo={}) for _ in params]
    for sample, p in zip(samples, params, strict=True):
        sample.set_field(p, "lut_photometric")
    with pytest.raises(ValueError, match="need the two views of LUT's pipeline, got Tensor"):
        ours(dict(inputs=_batch(photos[:2]), data_samples=samples), training=True)
