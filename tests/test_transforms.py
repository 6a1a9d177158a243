"""The LUT two-view pipeline (METHOD.md step 1) built from mmpretrain/mmcv transforms."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from PIL import Image, ImageOps

import lut_plugin.mmpretrain.datasets  # noqa: F401  (registers the transforms)
from lut_plugin.mmpretrain.datasets.pipelines import lut_view_pipelines
from lut_plugin.mmpretrain.datasets.transforms import (
    PaddedRandomCrop,
    PILColorJitter,
    adjust_hue_bgr,
)

REPO = Path(__file__).resolve().parents[1]
SNIPPET = REPO / "configs" / "mmpretrain" / "_base_" / "lut_pipeline.py"
SIZE = 32


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    # Nested transforms (MultiView, RandomApply, RandomChoice) are built through mmcv's
    # registry, which resolves mmpretrain names only under the mmpretrain default scope,
    # as in a training run.
    init_default_scope("mmpretrain")


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _views(size: int = SIZE, padding: int = 4) -> tuple[Compose, Compose]:
    v1, v2, _ = lut_view_pipelines(size, padding)
    return Compose(v1), Compose(v2)


def _run(pipeline: Compose, img: np.ndarray, seed: int) -> np.ndarray:
    np.random.seed(seed)
    return pipeline(dict(img=img.copy()))["img"]


def _plain(obj):
    """ConfigDict/tuple -> plain dict/list, for comparisons."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@pytest.mark.parametrize("hw", [(40, 48), (20, 30), (32, 32), (64, 33)])
def test_each_view_output_shape(hw):
    view1, view2 = _views()
    img = _image(*hw)
    for seed in range(3):
        for view in (view1, view2):
            out = _run(view, img, seed)
            assert out.shape == (SIZE, SIZE, 3)
            assert out.dtype == np.uint8


def test_view1_only_crops_and_flips():
    """With the short side already at the target size, the resize is the identity, so each
    view-1 output must be exactly one window of the reflect-padded input, maybe mirrored."""
    view1, _ = _views()
    img = _image(SIZE, 40, seed=1)
    padded = np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    flips_seen, offsets_seen = set(), set()
    for seed in range(30):
        out = _run(view1, img, seed)
        matches = []
        for oy in range(padded.shape[0] - SIZE + 1):
            for ox in range(padded.shape[1] - SIZE + 1):
                win = padded[oy : oy + SIZE, ox : ox + SIZE]
                if np.array_equal(out, win):
                    matches.append((oy, ox, False))
                if np.array_equal(out, win[:, ::-1]):
                    matches.append((oy, ox, True))
        assert len(matches) == 1, f"seed {seed}: view 1 is not a plain crop/flip ({matches})"
        flips_seen.add(matches[0][2])
        offsets_seen.add(matches[0][:2])
    assert flips_seen == {False, True}
    assert len(offsets_seen) > 10


def test_view1_keeps_pixel_multiset_on_unpadded_crop():
    view1, _ = _views(padding=0)
    img = _image(SIZE, SIZE, seed=2)
    for seed in range(5):
        out = _run(view1, img, seed)
        a = np.sort(out.reshape(-1, 3).view([("", np.uint8)] * 3), axis=0)
        b = np.sort(img.reshape(-1, 3).view([("", np.uint8)] * 3), axis=0)
        assert np.array_equal(a, b)


def test_reflect_padding_matches_numpy_reflect():
    img = _image(10, 12, seed=3)
    crop = PaddedRandomCrop(crop_size=(18, 20), padding=4, padding_mode="reflect")
    out = crop(dict(img=img.copy()))
    expected = np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    assert np.array_equal(out["img"], expected)
    assert out["img_shape"] == (18, 20)
    # mmpretrain's own RandomCrop ignores padding_mode for `padding` (constant zeros),
    # which is why the pipeline uses PaddedRandomCrop.
    from mmpretrain.datasets.transforms import RandomCrop

    upstream = RandomCrop(crop_size=(18, 20), padding=4, padding_mode="reflect")
    up = upstream(dict(img=img.copy()))["img"]
    assert (up[:4] == 0).all() and not np.array_equal(up, expected)


def test_padded_crop_offsets_cover_the_padding():
    crop = PaddedRandomCrop(crop_size=SIZE, padding=4)
    img = _image(SIZE, SIZE, seed=4)
    np.random.seed(0)
    offsets = {crop.rand_crop_params(np.pad(img, ((4, 4), (4, 4), (0, 0))))[:2] for _ in range(400)}
    assert offsets == {(y, x) for y in range(9) for x in range(9)}


def _spy(transform, log: list, tag):
    original = transform.transform

    def wrapped(results):
        log.append(tag)
        return original(results)

    transform.transform = wrapped


def test_view2_applies_exactly_one_of_gray_solarize_blur():
    _, view2 = _views()
    jitter_apply, choice = view2.transforms[-2], view2.transforms[-1]
    assert type(choice).__name__ == "RandomChoice" and choice.prob is None
    names = [type(sub.transforms[0]).__name__ for sub in choice.transforms]
    assert names == ["RandomGrayscale", "Solarize", "GaussianBlur"]
    assert all(len(sub.transforms) == 1 for sub in choice.transforms)
    log: list = []
    for i, sub in enumerate(choice.transforms):
        _spy(sub.transforms[0], log, i)
    jitter_log: list = []
    _spy(jitter_apply.transforms.transforms[0], jitter_log, "jitter")

    img = _image(40, 40, seed=5)
    n = 300
    picks = []
    for seed in range(n):
        log.clear()
        out = _run(view2, img, seed)
        assert len(log) == 1, f"seed {seed}: {len(log)} of gray/solarize/blur applied"
        picks.append(log[0])
        if log[0] == 0:  # grayscale keeps 3 equal channels
            assert np.array_equal(out[..., 0], out[..., 1])
            assert np.array_equal(out[..., 1], out[..., 2])
    counts = np.bincount(picks, minlength=3)
    assert counts.sum() == n and (counts > 75).all(), counts  # uniform: ~100 each
    assert 0.72 < len(jitter_log) / n < 0.88  # colour jitter with p = 0.8


def test_view2_component_parameters():
    _, view2 = _views()
    jitter = view2.transforms[-2].transforms.transforms[0]
    assert isinstance(jitter, PILColorJitter)
    assert view2.transforms[-2].prob == 0.8
    assert jitter.brightness == (0.6, 1.4) and jitter.contrast == (0.6, 1.4)
    assert jitter.saturation == (0.8, 1.2) and jitter.hue == (-0.1, 0.1)
    gray, solarize, blur = (sub.transforms[0] for sub in view2.transforms[-1].transforms)
    assert gray.prob == 1.0 and solarize.prob == 1.0 and blur.prob == 1.0
    assert solarize.thr == 128

    np.random.seed(0)
    radii = np.array([blur.random_magnitude() for _ in range(4000)])
    assert radii.min() >= 0.1 and radii.max() <= 2.0
    assert radii.min() < 0.11 and radii.max() > 1.99
    # uniform on [0.1, 2.0]: mean 1.05, std 1.9 / sqrt(12) = 0.548, flat histogram
    assert abs(radii.mean() - 1.05) < 0.03 and abs(radii.std() - 0.5485) < 0.02
    hist, _ = np.histogram(radii, bins=10, range=(0.1, 2.0))
    assert hist.min() > 330 and hist.max() < 470


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
@pytest.mark.parametrize("hue", [-0.1, -0.003, 0.0, 0.07])
def test_color_jitter_matches_torchvision(order, hue):
    import torchvision.transforms.functional as F

    rgb = _image(24, 20, seed=12)
    jitter = PILColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    b, c, s = 1.3, 0.7, 1.15
    jitter._rand_params = lambda: (np.array(order), b, c, s, hue)
    out = jitter(dict(img=rgb[..., ::-1].copy()))["img"][..., ::-1]
    ref = Image.fromarray(rgb)
    steps = [
        lambda im: F.adjust_brightness(im, b),
        lambda im: F.adjust_contrast(im, c),
        lambda im: F.adjust_saturation(im, s),
        lambda im: F.adjust_hue(im, hue),
    ]
    for index in order:
        ref = steps[index](ref)
    assert np.array_equal(out, np.asarray(ref))


def test_upstream_hue_fails_on_numpy2_which_is_why_pil_color_jitter_exists():
    img = _image(8, 8, seed=13)
    from mmcv import adjust_hue

    with pytest.raises(OverflowError):
        adjust_hue(img, -0.05, backend="pillow")
    assert np.array_equal(adjust_hue(img, 0.05, backend="pillow"), adjust_hue_bgr(img, 0.05))
    assert adjust_hue_bgr(img, -0.05).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="hue_factor"):
        adjust_hue_bgr(img, 0.6)


def test_solarize_inverts_from_128_like_pil():
    _, view2 = _views()
    solarize = view2.transforms[-1].transforms[1].transforms[0]
    img = np.array([[[0, 127, 128], [200, 255, 64]]], dtype=np.uint8)
    out = solarize(dict(img=img.copy()))["img"]
    pil = np.asarray(ImageOps.solarize(Image.fromarray(img), 128))
    assert np.array_equal(out, pil)
    assert out.tolist() == [[[0, 127, 127], [55, 0, 64]]]


def test_grayscale_matches_pil_luma_on_bgr_input():
    _, view2 = _views()
    gray = view2.transforms[-1].transforms[0].transforms[0]
    rgb = _image(16, 16, seed=6)
    out = gray(dict(img=rgb[..., ::-1].copy()))["img"]  # pipeline images are BGR
    ref = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.int16)
    assert out.shape == (16, 16, 3)
    assert np.abs(out[..., 0].astype(np.int16) - ref).max() <= 1


def test_resize_is_pil_bicubic_on_short_side():
    view1, _ = _views()
    resize = view1.transforms[0]
    img = _image(48, 64, seed=7)
    out = resize(dict(img=img.copy()))["img"]
    assert out.shape == (SIZE, 42, 3)  # int(32 * 64 / 48)
    ref = np.asarray(Image.fromarray(img).resize((42, SIZE), Image.Resampling.BICUBIC))
    assert np.array_equal(out, ref)


def test_two_views_draw_their_own_crops_and_flips():
    multiview = Compose(lut_view_pipelines(SIZE)[2][1:2]).transforms[0]
    crops = [multiview.pipelines[i].transforms[1] for i in range(2)]
    record: list = []
    for i, crop in enumerate(crops):
        original = crop.rand_crop_params

        def spy(img, i=i, original=original):
            params = original(img)
            record.append((i, params))
            return params

        crop.rand_crop_params = spy
    img = _image(40, 48, seed=8)
    differ = 0
    for seed in range(10):
        record.clear()
        np.random.seed(seed)
        out = multiview(dict(img=img.copy()))
        assert len(out["img"]) == 2 and [r[0] for r in record] == [0, 1]
        differ += record[0][1] != record[1][1]
        # same seed -> same two views
        np.random.seed(seed)
        again = multiview(dict(img=img.copy()))
        assert all(np.array_equal(a, b) for a, b in zip(out["img"], again["img"]))
    assert differ >= 9


def test_full_pipeline_through_multiview_packinputs_and_preprocessor(tmp_path):
    from mmpretrain.registry import MODELS

    path = tmp_path / "img.png"
    Image.fromarray(_image(40, 56, seed=9)).save(path)
    pipeline = Compose(lut_view_pipelines(SIZE)[2])
    np.random.seed(0)
    packed = pipeline(dict(img_path=str(path)))
    inputs = packed["inputs"]
    assert isinstance(inputs, list) and len(inputs) == 2
    for view in inputs:
        assert isinstance(view, torch.Tensor)
        assert view.shape == (3, SIZE, SIZE) and view.dtype == torch.uint8
    assert not torch.equal(inputs[0], inputs[1])
    assert "data_samples" in packed

    preprocessor = MODELS.build(
        dict(
            type="SelfSupDataPreprocessor",
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True,
        )
    )
    data = preprocessor(default_collate([packed, copy.deepcopy(packed)]), training=True)
    views = data["inputs"]
    assert len(views) == 2 and views[0].shape == (2, 3, SIZE, SIZE)
    expected = inputs[0].flip(0).float() - torch.tensor([123.675, 116.28, 103.53])[:, None, None]
    expected = expected / torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    torch.testing.assert_close(views[0][0], expected)


def test_snippet_equals_helper_at_224():
    cfg = Config.fromfile(str(SNIPPET))
    v1, v2, train = lut_view_pipelines(224, 4)
    assert cfg.lut_img_size == 224 and cfg.lut_crop_padding == 4
    assert _plain(cfg.view_pipeline1) == _plain(v1)
    assert _plain(cfg.view_pipeline2) == _plain(v2)
    assert _plain(cfg.lut_train_pipeline) == _plain(train)


def test_snippet_builds_and_runs_at_224():
    cfg = Config.fromfile(str(SNIPPET))
    pipeline = Compose(cfg.lut_train_pipeline[1:])
    np.random.seed(0)
    out = pipeline(dict(img=_image(240, 300, seed=10)))
    assert [tuple(v.shape) for v in out["inputs"]] == [(3, 224, 224), (3, 224, 224)]


def test_snippet_combines_with_upstream_mae_config(tmp_path):
    """mmengine refuses keys defined by two bases; the snippet's names must not collide
    with the MAE bases, and the 32 px variant must come from the helper."""
    child = tmp_path / "lut_toy.py"
    child.write_text(
        f"_base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',\n"
        f"          {str(SNIPPET)!r}]\n"
        "from lut_plugin.mmpretrain.datasets.pipelines import lut_view_pipelines\n"
        "view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(32)\n"
        "train_dataloader = dict(dataset=dict(pipeline=lut_train_pipeline))\n"
    )
    cfg = Config.fromfile(str(child))
    pipe = cfg.train_dataloader.dataset.pipeline
    assert [t["type"] for t in pipe] == ["LoadImageFromFile", "MultiView", "PackInputs"]
    assert pipe[1]["transforms"][0][0]["scale"] == 32
    assert pipe[1]["transforms"][1][1]["crop_size"] == 32
    assert "lut_view_pipelines" not in cfg  # the imported function is not in the config
    assert cfg.model.type == "MAE"  # the upstream base is still there

    inherit = tmp_path / "lut_224.py"
    inherit.write_text(
        f"_base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',\n"
        f"          {str(SNIPPET)!r}]\n"
        "train_dataloader = dict(dataset=dict(pipeline=_base_.lut_train_pipeline))\n"
    )
    cfg = Config.fromfile(str(inherit))
    pipe = cfg.train_dataloader.dataset.pipeline
    assert pipe[1]["transforms"][0][1]["type"] == "PaddedRandomCrop"
    assert pipe[1]["transforms"][0][1]["crop_size"] == 224


def test_padded_crop_handles_images_smaller_than_crop():
    crop = PaddedRandomCrop(crop_size=SIZE, padding=None, pad_if_needed=True)
    img = _image(20, 24, seed=11)
    out = crop(dict(img=img.copy()))["img"]
    assert out.shape == (SIZE, SIZE, 3)
    # reflect: every output pixel value exists in the input
    assert set(map(tuple, out.reshape(-1, 3))) <= set(map(tuple, img.reshape(-1, 3)))
