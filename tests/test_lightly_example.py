"""``examples/lightly_lut.py`` runs; ``LUTTransform`` makes the two views of METHOD.md step 1."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image, ImageOps
from synthetic import synthetic_photo
from torchvision.transforms.functional import to_tensor

from lut_plugin.core import MomentumTeacher
from lut_plugin.lightly import LUTTransform, LUTView1Transform, LUTView2Transform

_spec = importlib.util.spec_from_file_location("lightly_lut", ROOT / "examples/lightly_lut.py")
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float rounding (lightly's ToTensor scales by 1/255, to_tensor divides)."""
    return torch.allclose(a, b, atol=1e-6, rtol=0)


@pytest.fixture(autouse=True)
def _seeded():
    """torchvision draws with torch's generator, lightly's blur/solarize with numpy's."""
    torch.manual_seed(0)
    np.random.seed(0)


def _image(size: int = 16, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


# -- the example ------------------------------------------------------------------------
def test_example_trains_two_steps_on_tiny_random_images(capsys, monkeypatch):
    updates = []  # (momentum, teacher before, student, teacher after) of one weight per update
    update_from = MomentumTeacher.update_from

    def recording_update_from(self, students, momentum):
        before = self["backbone"].vit.blocks[0].attn.qkv.weight.detach().clone()
        student = students["backbone"].vit.blocks[0].attn.qkv.weight.detach().clone()
        update_from(self, students, momentum)
        after = self["backbone"].vit.blocks[0].attn.qkv.weight.detach().clone()
        updates.append((momentum, before, student, after))

    monkeypatch.setattr(MomentumTeacher, "update_from", recording_update_from)
    argv = [
        "--model", "vit_tiny_patch16_224", "--input-size", "32", "--batch-size", "4",
        "--max-steps", "2", "--decoder-dim", "32", "--decoder-depth", "1", "--head-dim", "64",
        "--num-workers", "0",
    ]  # fmt: skip
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # lightly's deprecations are FutureWarnings
        model = example.main(argv)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert [line.split(":")[0] for line in lines] == ["step 1/2", "step 2/2"]
    for line in lines:
        values = [float(v) for v in line.split(":")[1].split()[1::2]]
        assert len(values) == 3 and all(np.isfinite(values))
    # one EMA update after each optimiser step: t <- m t + (1 - m) s, m = 0.996 then 1.0
    assert [m for m, *_ in updates] == [pytest.approx(0.996), 1.0]
    momentum, before, student, after = updates[0]
    assert not torch.equal(before, student)
    torch.testing.assert_close(after, momentum * before + (1 - momentum) * student)
    # the teacher is still a frozen, eval-mode copy
    assert not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_example_refuses_fewer_images_than_a_batch(tmp_path):
    """drop_last leaves no batch: an error instead of an endless loop over an empty loader."""
    (tmp_path / "images" / "a").mkdir(parents=True)
    for i in range(3):
        _image(40, seed=i).save(tmp_path / "images" / "a" / f"{i}.png")
    argv = [
        "--data", str(tmp_path / "images"), "--model", "vit_tiny_patch16_224", "--input-size",
        "32", "--batch-size", "8", "--max-steps", "2", "--num-workers", "0",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="3 images give no batch of --batch-size 8"):
        example.main(argv)


# -- LUTTransform -----------------------------------------------------------------------
def test_transform_gives_two_normalised_views():
    views = LUTTransform(LUTView1Transform(16), LUTView2Transform(16))(_image(20))
    assert len(views) == 2
    for view in views:
        assert view.shape == (3, 16, 16) and view.dtype == torch.float32
    assert views[0].min() < 0  # ImageNet normalisation applied


def _photo(seed: int = 0) -> Image.Image:
    """A non-square, natural-looking image larger than the views."""
    return Image.fromarray(synthetic_photo(30, 40, seed))


def _views_resized_in_each_view(image: Image.Image, size: int) -> list[torch.Tensor]:
    return [LUTView1Transform(size)(image), LUTView2Transform(size)(image)]


@pytest.mark.parametrize("seed", range(6))
def test_resizing_once_gives_the_views_of_resizing_in_each_view(seed):
    """Both the default views (resize=False after LUTTransform's one resize) and views passed
    in with their own resize (then a no-op) give the per-view resize's pixels exactly."""
    image = _photo(seed)
    torch.manual_seed(seed), np.random.seed(seed)
    reference = _views_resized_in_each_view(image, 16)
    for transform in (
        LUTTransform(input_size=16),
        LUTTransform(LUTView1Transform(16), LUTView2Transform(16)),
    ):
        torch.manual_seed(seed), np.random.seed(seed)
        views = transform(image)
        assert all(torch.equal(a, b) for a, b in zip(views, reference, strict=True))
    assert LUTTransform(LUTView1Transform(16)).resize.size == [16]  # size taken from the views
    assert LUTTransform().resize.size == [224]
    assert len(LUTTransform().transforms[0].transform.transforms) == 2  # crop, flip


def test_views_of_another_size_are_refused():
    with pytest.raises(ValueError, match=r"resizes to 224 px but its views are built for \[16\]"):
        LUTTransform(LUTView1Transform(16), input_size=224)
    with pytest.raises(ValueError, match=r"\[16, 32\]"):
        LUTTransform(LUTView1Transform(16), LUTView2Transform(32))


def test_view1_is_a_reflect_padded_crop_possibly_flipped():
    """Every draw equals one of the 9 x 9 windows of the 4-px reflect-padded image, or its
    mirror; over many draws, several offsets and both flips occur."""
    image = _image(16)
    padded = torch.nn.functional.pad(to_tensor(image)[None], (4, 4, 4, 4), mode="reflect")[0]
    windows = {
        (dy, dx, flip): (w.flip(-1) if flip else w)
        for dy in range(9)
        for dx in range(9)
        for flip in (False, True)
        for w in [padded[:, dy : dy + 16, dx : dx + 16]]
    }
    transform = LUTView1Transform(16, normalize=None)
    seen = set()
    for _ in range(40):
        view = transform(image)
        match = [key for key, w in windows.items() if same(view, w)]
        assert match, "view is not a window of the reflect-padded image"
        seen.update(match)
    assert len({(dy, dx) for dy, dx, _ in seen}) > 5 and {f for *_, f in seen} == {False, True}


def test_view2_applies_exactly_one_of_grayscale_solarize_blur():
    """Colour jitter off and no geometric change: each output is exactly the grayscale image,
    exactly the solarised image, or a blurred image (smoother, neither of the other two)."""
    image = _image(16)
    transform = LUTView2Transform(16, padding=0, hf_prob=0.0, cj_prob=0.0, normalize=None)
    gray = to_tensor(image.convert("L").convert("RGB"))
    solarized = to_tensor(ImageOps.solarize(image, threshold=128))
    original = to_tensor(image)

    def roughness(x):
        return (x[:, 1:] - x[:, :-1]).abs().mean() + (x[:, :, 1:] - x[:, :, :-1]).abs().mean()

    counts = {"gray": 0, "solarize": 0, "blur": 0}
    for _ in range(90):
        view = transform(image)
        if same(view, gray):
            counts["gray"] += 1
        elif same(view, solarized):
            counts["solarize"] += 1
        else:
            assert not same(view[0], view[1])  # not gray after all
            assert roughness(view) < roughness(original)
            counts["blur"] += 1
    assert all(n >= 15 for n in counts.values()), counts  # uniform choice, 30 expected each


def test_view2_settings_follow_method_step_1():
    view = LUTView2Transform()  # the mmpretrain pipeline's view 2 (lut_view_pipelines)
    assert view.resize.size == [224] and view.resize.interpolation.value == "bicubic"
    crop, flip, distortion = view.transform.transforms
    assert (crop.crop_size, crop.padding, crop.padding_mode) == ((224, 224), 4, "reflect")
    assert flip.prob == 0.5 and distortion.jitter_prob == 0.8
    assert (distortion.brightness, distortion.contrast, distortion.saturation, distortion.hue) == (
        (0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)
    )  # fmt: skip
    assert distortion.EXCLUSIVE == ("grayscale", "solarize", "blur")
    assert distortion.blur_radius == (0.1, 2.0) and distortion.solarize_threshold == 128
