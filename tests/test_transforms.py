"""The LUT two-view pipeline (METHOD.md step 1): its transforms against PIL/torchvision.

The reference is the authors' torchvision pipeline on PIL images: ``Resize(224, bicubic)``
once per view, ``RandomCrop(224, padding=4, padding_mode='reflect')``, flip, and for view 2
``ColorJitter`` (p = 0.8) and one of grayscale / solarize / ``GaussianBlur(radius)``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.datasets.transforms import RandomCrop
from PIL import Image, ImageFilter, ImageOps
from synthetic import synthetic_photo

from lut_plugin.datasets import photometric
from lut_plugin.datasets.transforms import (
    LUTPaddedRandomCrop,
    LUTPhotometricDistortion,
    LUTResizeEdge,
    lut_view_pipelines,
)

REPO = Path(__file__).resolve().parents[1]
SNIPPET = REPO / "configs" / "mmpretrain" / "_base_" / "lut_pipeline.py"
SIZE = 32


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    # Nested transforms (MultiView) are built through mmcv's registry, which resolves
    # mmpretrain names only under the mmpretrain default scope, as in a training run.
    init_default_scope("mmpretrain")


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Natural-looking RGB crops (96 x 80) of 500 x 375 synthetic photos."""
    return [np.ascontiguousarray(synthetic_photo(375, 500, s)[100:196, 200:280]) for s in range(4)]


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


def _views(size: int = SIZE, padding: int = 4) -> tuple[Compose, Compose, Compose]:
    """(resize, view 1, view 2) as in the training pipeline."""
    v1, v2, full = lut_view_pipelines(size, padding)
    return Compose([full[1]]), Compose(v1), Compose(v2)


def _plain(obj):
    """ConfigDict/tuple -> plain dict/list, for comparisons."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ------------------------------------------------------------------ pipeline structure
def test_pipeline_layout():
    v1, v2, full = lut_view_pipelines(SIZE)
    assert [t["type"] for t in full] == [
        "LoadImageFromFile",
        "LUTResizeEdge",
        "MultiView",
        "PackInputs",
    ]
    assert full[1]["scale"] == SIZE and full[1]["interpolation"] == "bicubic"
    assert [t["type"] for t in v1] == ["LUTPaddedRandomCrop", "RandomFlip"]
    assert [t["type"] for t in v2] == [
        "LUTPaddedRandomCrop",
        "RandomFlip",
        "LUTPhotometricDistortion",
    ]
    assert full[2]["transforms"] == [v1, v2] and full[2]["num_views"] == [1, 1]


@pytest.mark.parametrize("hw", [(40, 48), (20, 30), (32, 32), (64, 33)])
def test_each_view_output_shape(hw):
    resize, view1, view2 = _views()
    img = resize(dict(img=_noise(*hw)))["img"]
    for seed in range(3):
        np.random.seed(seed)
        for view in (view1, view2):
            out = view(dict(img=img.copy()))["img"]
            assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8


def test_resize_once_equals_resizing_in_each_view():
    """Moving the deterministic resize in front of MultiView changes no pixel and no
    random draw: for the same random state both layouts give identical views."""
    v1, v2, full = lut_view_pipelines(SIZE)
    for backend in ("torchvision", "pillow"):
        resize = dict(full[1], backend=backend)
        once = Compose([resize, dict(full[2])])
        per_view = Compose(
            [dict(type="MultiView", num_views=[1, 1], transforms=[[resize] + v1, [resize] + v2])]
        )
        for seed, hw in enumerate([(48, 64), (70, 40), (33, 33), (375, 500)]):
            img = _bgr(synthetic_photo(*hw, seed)) if hw[0] > 100 else _noise(*hw, seed)
            np.random.seed(seed)
            a = once(dict(img=img.copy()))["img"]
            np.random.seed(seed)
            b = per_view(dict(img=img.copy()))["img"]
            assert len(a) == len(b) == 2
            for x, y in zip(a, b):
                assert np.array_equal(x, y)


def test_resize_backends_agree_within_one_grey_level():
    """torchvision's antialiased uint8 bicubic follows PIL's resampling."""
    diffs = []
    for seed in range(3):
        img = _bgr(synthetic_photo(375, 500, seed))
        out = {
            backend: LUTResizeEdge(scale=224, backend=backend)(dict(img=img.copy()))
            for backend in ("torchvision", "pillow")
        }
        assert out["torchvision"]["img"].shape == out["pillow"]["img"].shape == (224, 298, 3)
        assert out["torchvision"]["scale"] == out["pillow"]["scale"] == (298, 224)
        np.testing.assert_allclose(
            out["torchvision"]["scale_factor"], out["pillow"]["scale_factor"]
        )
        ref = np.asarray(
            Image.fromarray(img[..., ::-1]).resize((298, 224), Image.Resampling.BICUBIC)
        )[..., ::-1]
        assert np.array_equal(out["pillow"]["img"], ref)  # upstream backend = PIL
        diffs.append(np.abs(out["torchvision"]["img"].astype(int) - ref))
    print(
        f"\nresize torchvision vs PIL: max {max(d.max() for d in diffs)}, "
        f"pixels differing {np.mean([(d > 0).mean() for d in diffs]):.4%}"
    )
    assert max(d.max() for d in diffs) <= 1
    assert np.mean([(d > 0).mean() for d in diffs]) < 0.01
    with pytest.raises(ValueError, match="interpolation"):
        LUTResizeEdge(scale=224, interpolation="lanczos")


def test_resize_keeps_grayscale_arrays_2d():
    out = LUTResizeEdge(scale=16)(dict(img=_noise(32, 48)[..., 0].copy()))["img"]
    assert out.shape == (16, 24)


# ------------------------------------------------------------------ crops and flips
def test_view1_only_crops_and_flips():
    """With the short side already at the target size, each view-1 output must be
    exactly one window of the reflect-padded input, maybe mirrored."""
    _, view1, _ = _views()
    img = _noise(SIZE, 40, seed=1)
    padded = np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    flips_seen, offsets_seen = set(), set()
    for seed in range(30):
        np.random.seed(seed)
        out = view1(dict(img=img.copy()))["img"]
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


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "edge", "constant"])
def test_padded_crop_is_a_window_of_numpy_padding_at_upstream_offsets(mode):
    """``padding`` (4 values: left, top, right, bottom), then ``pad_if_needed``'s centred
    padding, both with ``padding_mode`` as ``np.pad``; the offsets are RandomCrop's draws."""
    img = _noise(12, 30, seed=3)
    ours = LUTPaddedRandomCrop(
        crop_size=(24, 20),
        padding=(2, 3, 5, 1),
        pad_if_needed=True,
        padding_mode=mode,
        pad_val=(7, 7, 7),
    )
    upstream = RandomCrop(crop_size=(24, 20))
    kwargs = dict(constant_values=7) if mode == "constant" else {}
    ref = np.pad(img, ((3, 1), (2, 5), (0, 0)), mode=mode, **kwargs)  # 16 x 37
    ref = np.pad(ref, ((4, 4), (0, 0), (0, 0)), mode=mode, **kwargs)  # centred to 24 rows
    for seed in range(6):
        np.random.seed(seed)
        out = ours(dict(img=img.copy()))
        np.random.seed(seed)
        oy, ox, th, tw = upstream.rand_crop_params(ref)
        assert np.array_equal(out["img"], ref[oy : oy + th, ox : ox + tw])
        assert out["img_shape"] == (24, 20)


def test_reflect_padding_matches_numpy_reflect_and_upstream_does_not():
    img = _noise(10, 12, seed=3)
    out = LUTPaddedRandomCrop(crop_size=(18, 20), padding=4)(dict(img=img.copy()))
    expected = np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    assert np.array_equal(out["img"], expected)
    # mmpretrain's own RandomCrop ignores padding_mode for `padding` (constant zeros).
    up = RandomCrop(crop_size=(18, 20), padding=4, padding_mode="reflect")(dict(img=img.copy()))
    assert (up["img"][:4] == 0).all() and not np.array_equal(up["img"], expected)


def test_padded_crop_offsets_cover_the_padding_uniformly():
    crop = LUTPaddedRandomCrop(crop_size=SIZE, padding=4)
    np.random.seed(0)
    padded = np.zeros((SIZE + 8, SIZE + 8, 3), np.uint8)
    offsets = [crop.rand_crop_params(padded)[:2] for _ in range(8100)]
    counts = np.zeros((9, 9), int)
    for y, x in offsets:
        counts[y, x] += 1
    assert counts.min() > 60 and counts.max() < 145  # 81 cells, 100 expected each


def _record_views(n: int, img: np.ndarray):
    """Run the two-view MultiView ``n`` times; record each view's crop, flip and
    photometric parameters."""
    multiview = Compose([lut_view_pipelines(SIZE)[2][2]]).transforms[0]
    record: dict = {"offsets": [[], []], "flips": [[], []], "params": []}
    for i, view in enumerate(multiview.pipelines):
        crop, flip = view.transforms[0], view.transforms[1]
        draw_offsets, choose = crop.rand_crop_params, flip._choose_direction

        def offsets_spy(*args, i=i, draw=draw_offsets):
            out = draw(*args)
            record["offsets"][i].append(out[:2])
            return out

        def flip_spy(i=i, choose=choose):
            out = choose()
            record["flips"][i].append(out is not None)
            return out

        crop.rand_crop_params, flip._choose_direction = offsets_spy, flip_spy
    distortion = multiview.pipelines[1].transforms[2]
    draw_params = distortion.random_params

    def params_spy():
        out = draw_params()
        record["params"].append(out)
        return out

    distortion.random_params = params_spy
    outputs = []
    for seed in range(n):
        np.random.seed(seed)
        outputs.append(multiview(dict(img=img.copy()))["img"])
    return record, outputs


def test_two_views_draw_independent_crops_and_flips():
    img = _noise(SIZE, 48, seed=8)  # 9 x 25 crop offsets after padding
    n = 600
    record, outputs = _record_views(n, img)
    off1, off2 = (np.array(o) for o in record["offsets"])
    flip1, flip2 = (np.array(f) for f in record["flips"])
    assert len(off1) == len(off2) == len(flip1) == len(flip2) == n
    for off, flip in ((off1, flip1), (off2, flip2)):
        assert set(off[:, 0]) == set(range(9)) and set(off[:, 1]) == set(range(25))
        assert 0.43 < flip.mean() < 0.57
    assert (off1 != off2).any(axis=1).mean() > 0.95
    # independence: joint frequencies close to the product of the marginals
    assert 0.19 < (flip1 & flip2).mean() < 0.31
    assert abs(np.corrcoef(off1[:, 1], off2[:, 1])[0, 1]) < 0.12
    # same seed, same two views
    np.random.seed(3)
    _, again = _record_views(4, img)
    assert all(np.array_equal(a, b) for a, b in zip(outputs[3], again[3]))


# ------------------------------------------------------------------ view-2 distortion
def test_distortion_parameter_distributions():
    distortion = LUTPhotometricDistortion()
    np.random.seed(0)
    n = 6000
    draws = [distortion.random_params() for _ in range(n)]
    picks = np.array([LUTPhotometricDistortion.EXCLUSIVE.index(d["exclusive"]) for d in draws])
    counts = np.bincount(picks, minlength=3)
    assert (np.abs(counts - n / 3) < 4 * np.sqrt(n * 2 / 9)).all(), counts  # 4 sigma
    jitter = [d["jitter"] for d in draws if d["jitter"] is not None]
    assert abs(len(jitter) / n - 0.8) < 4 * np.sqrt(0.16 / n)
    # exactly one exclusive transform, whether or not the jitter ran
    with_jitter = np.array([d["jitter"] is not None for d in draws])
    for k in range(3):
        assert 0.74 < with_jitter[picks == k].mean() < 0.86
    b, c, s, h = (np.array([j[k] for j in jitter]) for k in range(1, 5))
    for values, low, high in ((b, 0.6, 1.4), (c, 0.6, 1.4), (s, 0.8, 1.2), (h, -0.1, 0.1)):
        assert values.min() >= low and values.max() <= high
        assert abs(values.mean() - (low + high) / 2) < 0.01 * (high - low) * 3
        hist, _ = np.histogram(values, bins=5, range=(low, high))
        assert hist.min() > 0.8 * len(values) / 5
    orders = {tuple(j[0]) for j in jitter}
    assert len(orders) == 24  # every order of the four adjustments occurs
    first = np.bincount([j[0][0] for j in jitter], minlength=4) / len(jitter)
    assert np.abs(first - 0.25).max() < 0.04
    radii = np.array([d["blur_radius"] for d in draws if d["exclusive"] == "blur"])
    assert radii.min() >= 0.1 and radii.max() <= 2.0
    assert abs(radii.mean() - 1.05) < 0.05 and abs(radii.std() - 1.9 / np.sqrt(12)) < 0.03
    assert all(d["blur_radius"] is None for d in draws if d["exclusive"] != "blur")


def _pil_reference(rgb: np.ndarray, params: dict) -> np.ndarray:
    """The authors' view-2 photometric transforms: torchvision on a PIL image."""
    img = Image.fromarray(rgb)
    if params["jitter"] is not None:
        order, b, c, s, h = params["jitter"]
        steps = (
            lambda im: F.adjust_brightness(im, b),
            lambda im: F.adjust_contrast(im, c),
            lambda im: F.adjust_saturation(im, s),
            lambda im: F.adjust_hue(im, h),
        )
        for index in order:
            img = steps[index](img)
    if params["exclusive"] == "grayscale":
        img = F.rgb_to_grayscale(img, num_output_channels=3)
    elif params["exclusive"] == "solarize":
        img = ImageOps.solarize(img, 128)
    else:
        img = img.filter(ImageFilter.GaussianBlur(params["blur_radius"]))
    return np.asarray(img)


def _max_mean_diff(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), float(d.mean())


JITTER_CASES = [
    # (order, brightness, contrast, saturation, hue), hand-picked: extremes and negative hue
    ((0, 1, 2, 3), 1.4, 0.6, 1.2, -0.1),
    ((3, 2, 1, 0), 0.6, 1.4, 0.8, 0.1),
    ((2, 0, 3, 1), 1.13, 0.71, 1.05, -0.0037),
    ((1, 3, 0, 2), 0.93, 1.21, 0.87, -0.052),
    ((3, 0, 2, 1), 1.0, 1.0, 1.0, 0.0),
]


@pytest.mark.parametrize("jitter", JITTER_CASES)
@pytest.mark.parametrize("exclusive", [("grayscale", None), ("solarize", None), ("blur", 1.37)])
def test_distortion_matches_torchvision_on_pil(photos, jitter, exclusive):
    params = dict(jitter=jitter, exclusive=exclusive[0], blur_radius=exclusive[1])
    params["solarize_threshold"] = 128
    distortion = LUTPhotometricDistortion()
    distortion.random_params = lambda: params
    for rgb in photos:
        out = distortion(dict(img=_bgr(rgb)))["img"]
        assert out.shape == rgb.shape and out.dtype == np.uint8 and out.flags.c_contiguous
        worst, _ = _max_mean_diff(out[..., ::-1], _pil_reference(rgb, params))
        assert worst == 0  # the same pixels; the specification allows 1 grey level


def test_distortion_matches_reference_for_random_draws(photos):
    """Parameters as drawn in training (jitter on or off, any order, negative hues)."""
    distortion = LUTPhotometricDistortion()
    draw = distortion.random_params
    np.random.seed(1)
    seen_negative_hue = 0
    for k in range(40):
        params = draw()
        seen_negative_hue += params["jitter"] is not None and params["jitter"][4] < 0
        distortion.random_params = lambda params=params: params
        rgb = photos[k % len(photos)]
        out = distortion(dict(img=_bgr(rgb)))["img"]
        worst, _ = _max_mean_diff(out[..., ::-1], _pil_reference(rgb, params))
        assert worst == 0, params
    assert seen_negative_hue >= 5


def test_view2_pipeline_output_matches_reference_for_its_own_draws(photos):
    """Through MultiView: view 2 equals the PIL reference applied to its crop and flip."""
    img = _bgr(photos[0][:SIZE, :40])
    record, outputs = _record_views(20, img)
    padded = np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    for (oy, ox), flipped, params, views in zip(
        record["offsets"][1], record["flips"][1], record["params"], outputs
    ):
        window = padded[oy : oy + SIZE, ox : ox + SIZE]
        window = window[:, ::-1] if flipped else window
        ref = _pil_reference(np.ascontiguousarray(window[..., ::-1]), params)
        assert np.array_equal(views[1][..., ::-1], ref)


@pytest.mark.parametrize("hue", [-0.1, 0.0])
def test_hue_on_every_colour_against_torchvision(hue):
    """All 2**24 colours in one 4096 x 4096 image: PIL quantises hue to 256 steps, so
    exactness on every colour is what keeps a jittered pixel within 1 grey level."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    ours = photometric.adjust_hue(_bgr(rgb), hue)[..., ::-1]
    assert np.array_equal(ours, np.asarray(F.adjust_hue(Image.fromarray(rgb), hue)))
    if hue == 0.0:
        ref = np.asarray(Image.fromarray(rgb).convert("L"))
        assert np.array_equal(photometric.luma(_bgr(rgb)), ref)
    with pytest.raises(ValueError, match="hue_factor"):
        photometric.adjust_hue(_bgr(rgb[:2, :2]), 0.6)


@pytest.mark.parametrize("factor", [0.0, 0.6, 0.83, 1.0, 1.2, 1.4, 2.5])
def test_enhancements_against_torchvision(photos, factor):
    for rgb in photos:
        pil = Image.fromarray(rgb)
        for ours, ref in (
            (photometric.adjust_brightness, F.adjust_brightness),
            (photometric.adjust_contrast, F.adjust_contrast),
            (photometric.adjust_saturation, F.adjust_saturation),
        ):
            out = ours(_bgr(rgb), factor)[..., ::-1]
            assert np.array_equal(out, np.asarray(ref(pil, factor))), (ours.__name__, factor)


def test_grayscale_and_solarize_against_pil(photos):
    edge = np.array([[[0, 127, 128], [200, 255, 64]]], dtype=np.uint8)
    for rgb in [*photos, edge]:
        pil = Image.fromarray(rgb)
        gray = photometric.grayscale(_bgr(rgb))[..., ::-1]
        assert np.array_equal(gray, np.asarray(F.rgb_to_grayscale(pil, 3)))
        solarized = photometric.solarize(_bgr(rgb), 128)[..., ::-1]
        assert np.array_equal(solarized, np.asarray(ImageOps.solarize(pil, 128)))
    assert photometric.solarize(edge).tolist() == [[[0, 127, 127], [55, 0, 64]]]


def test_blur_closeness_to_pil(photos):
    """PIL's GaussianBlur is three box passes per axis with 24-bit weights; ours runs the
    same passes with ``cv2.filter2D``. Prints how close it is over the radius range."""
    worst, means = 0, []
    for radius in [*np.linspace(0.1, 2.0, 20).tolist(), 0.7071, 1.234567]:
        for rgb in photos:
            ref = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius)))
            out = photometric.gaussian_blur(_bgr(rgb), radius)[..., ::-1]
            m, mean = _max_mean_diff(out, ref)
            worst, means = max(worst, m), [*means, mean]
    print(
        f"\nGaussian blur vs PIL GaussianBlur(radius), radius 0.1-2.0, {len(means)} images: "
        f"max abs diff {worst}, mean abs diff {np.mean(means):.6f}"
    )
    assert worst <= 1
    assert np.array_equal(photometric.gaussian_blur(_bgr(photos[0]), 0), _bgr(photos[0]))
    with pytest.raises(ValueError, match="radius"):
        photometric.gaussian_blur(_bgr(photos[0]), -1.0)


def test_photometric_functions_reject_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        photometric.luma(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="uint8"):
        photometric.adjust_brightness(np.zeros((4, 4), dtype=np.uint8), 1.2)
    with pytest.raises(ValueError, match="jitter_prob"):
        LUTPhotometricDistortion(jitter_prob=1.5)
    with pytest.raises(ValueError, match="blur_radius"):
        LUTPhotometricDistortion(blur_radius=(2.0, 0.1))


def test_distortion_component_parameters_from_the_pipeline():
    _, _, view2 = _views()
    distortion = view2.transforms[-1]
    assert isinstance(distortion, LUTPhotometricDistortion)
    assert distortion.jitter_prob == 0.8
    assert distortion.brightness == (0.6, 1.4) and distortion.contrast == (0.6, 1.4)
    assert distortion.saturation == (0.8, 1.2) and distortion.hue == (-0.1, 0.1)
    assert distortion.blur_radius == (0.1, 2.0) and distortion.solarize_threshold == 128
    assert "jitter_prob=0.8" in repr(distortion)


# ------------------------------------------------------------------ whole pipeline, configs
def test_full_pipeline_through_multiview_packinputs_and_preprocessor(tmp_path):
    from mmpretrain.registry import MODELS

    path = tmp_path / "img.jpg"
    Image.fromarray(synthetic_photo(56, 40, seed=9)).save(path, quality=90)
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


def test_snippet_is_the_helper_at_224_and_runs():
    cfg = Config.fromfile(str(SNIPPET))
    v1, v2, train = lut_view_pipelines(224, 4)
    assert _plain(cfg.view_pipeline1) == _plain(v1)
    assert _plain(cfg.view_pipeline2) == _plain(v2)
    assert _plain(cfg.lut_train_pipeline) == _plain(train)
    on_device = lut_view_pipelines(224, 4, photometric_on_device=True)[2]
    assert _plain(cfg.lut_train_pipeline_photometric_on_device) == _plain(on_device)
    pipeline = Compose(cfg.lut_train_pipeline[1:])
    np.random.seed(0)
    out = pipeline(dict(img=_noise(240, 300, seed=10)))
    assert [tuple(v.shape) for v in out["inputs"]] == [(3, 224, 224), (3, 224, 224)]


def test_snippet_combines_with_upstream_mae_config(tmp_path):
    """mmengine refuses keys defined by two bases; the snippet's names must not collide
    with the MAE bases, and the 32 px variant must come from the helper."""
    child = tmp_path / "lut_toy.py"
    child.write_text(
        f"_base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',\n"
        f"          {str(SNIPPET)!r}]\n"
        "from lut_plugin.datasets import lut_view_pipelines\n"
        "view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(32)\n"
        "train_dataloader = dict(dataset=dict(pipeline=lut_train_pipeline))\n"
    )
    cfg = Config.fromfile(str(child))
    pipe = cfg.train_dataloader.dataset.pipeline
    assert [t["type"] for t in pipe] == [
        "LoadImageFromFile",
        "LUTResizeEdge",
        "MultiView",
        "PackInputs",
    ]
    assert pipe[1]["scale"] == 32
    assert pipe[2]["transforms"][1][0]["crop_size"] == 32
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
    assert pipe[2]["transforms"][0][0]["type"] == "LUTPaddedRandomCrop"
    assert pipe[2]["transforms"][0][0]["crop_size"] == 224
