"""Reconstruction pictures: panels, the undone norm_pix, the masks as drawn."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from conftest import tiny_lut_cfg
from mmengine.visualization import LocalVisBackend, Visualizer
from mmpretrain.registry import MODELS

import lut_plugin  # noqa: F401
from lut_plugin.visualization import (
    GREY,
    ReconstructionVisualizerHook,
    reconstruct,
    reconstruction_grid,
    undo_norm_pix,
)

PRE = dict(type="SelfSupDataPreprocessor", mean=[120.0, 110.0, 100.0], std=[50.0, 60.0, 70.0])
LUT_CFG = tiny_lut_cfg(data_preprocessor=PRE)
SIZE, PATCH = LUT_CFG["backbone"]["img_size"], LUT_CFG["backbone"]["patch_size"]
ARCH, MLP = LUT_CFG["backbone"]["arch"], LUT_CFG["projector"]
MAE_PARTS = dict(neck=LUT_CFG["neck"], head=LUT_CFG["head"], data_preprocessor=PRE)
SIMMIM_VIT = dict(
    type="LUTSimMIMViT",
    arch=ARCH,
    img_size=SIZE,
    patch_size=PATCH,
    mask_patch_size=2 * PATCH,
    use_abs_pos_emb=False,
    use_rel_pos_bias=False,
    use_shared_rel_pos_bias=True,
)
SIMMIM_PARTS = dict(
    neck=dict(type="SimMIMLinearDecoder", in_channels=ARCH["embed_dims"], encoder_stride=PATCH),
    head=dict(
        type="SimMIMHead",
        patch_size=PATCH,
        loss=dict(type="PixelReconstructionLoss", criterion="L1", channel=3),
    ),
    data_preprocessor=PRE,
)
MODEL_CFGS = {
    "LUT": LUT_CFG,
    "MAE": dict(
        type="MAE",
        backbone=dict(type="MAEViT", arch=ARCH, img_size=SIZE, patch_size=PATCH),
        **MAE_PARTS,
    ),
    "LUTSimMIM": dict(
        type="LUTSimMIM", backbone=SIMMIM_VIT, projector=MLP, predictor=MLP, **SIMMIM_PARTS
    ),
    "SimMIM": dict(type="SimMIM", backbone=SIMMIM_VIT, **SIMMIM_PARTS),
}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(MODEL_CFGS[name])
    model.init_weights()
    return model.eval()


def images(batch: int = 2) -> torch.Tensor:
    """Normalised images whose pixels are never GREY (so grey marks hidden patches only)."""
    pixels = torch.randint(
        0, 255, (batch, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(1)
    )
    pixels = pixels + (pixels >= GREY).long()  # never GREY
    mean, std = torch.tensor(PRE["mean"]).view(3, 1, 1), torch.tensor(PRE["std"]).view(3, 1, 1)
    return (pixels.float() - mean) / std


def patch_grey(panel: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` panel -> ``(L,)`` bool: the patch is all GREY."""
    grid = panel.reshape(SIZE // PATCH, PATCH, SIZE // PATCH, PATCH, 3)
    return (grid == GREY).all(axis=(1, 3, 4)).reshape(-1)


def test_undo_norm_pix_by_hand():
    target = torch.tensor([[[1.0, 2.0, 3.0, 6.0]]])  # mean 3, unbiased var 14 / 3
    pred = torch.tensor([[[0.0, 1.0, -1.0, 0.5]]])
    std = (14 / 3 + 1e-6) ** 0.5
    expected = torch.tensor([[[3.0, 3.0 + std, 3.0 - std, 3.0 + 0.5 * std]]])
    torch.testing.assert_close(undo_norm_pix(pred, target), expected)


@pytest.mark.parametrize("name", ["LUT", "MAE", "LUTSimMIM", "SimMIM"])
def test_perfect_prediction_reconstructs_the_image(name):
    """A decoder that predicts the head's exact target gives back the image: norm_pix is
    undone with each target patch's own mean and variance."""
    model, x = build(name), images()
    if hasattr(model.head, "patchify"):
        model.neck.forward = lambda *args: model.head.construct_target(x)
    else:
        model.neck.forward = lambda *args: x
    out = reconstruct(model, x)
    torch.testing.assert_close(out.rec, x, atol=1e-4, rtol=1e-4)
    assert (out.mask2 is not None) == name.startswith("LUT")


@pytest.mark.parametrize("name", ["LUT", "MAE", "LUTSimMIM", "SimMIM"])
def test_grid_panels_and_masks(name):
    model, x = build(name), images()
    grid = reconstruction_grid(model, x, seed=3)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        out = reconstruct(model, x)
    panels = 5 if name.startswith("LUT") else 4
    side = SIZE + 2  # one white pixel each side
    assert grid.shape == (2 * side, panels * side, 3) and grid.dtype == np.uint8
    for b in range(2):
        row = grid[b * side + 1 : (b + 1) * side - 1]
        cells = [row[:, p * side + 1 : (p + 1) * side - 1] for p in range(panels)]
        grey1 = patch_grey(cells[1])
        # view 1's grey patches are exactly the removed ones; the rest is the image
        np.testing.assert_array_equal(grey1, out.mask1[b].numpy().astype(bool))
        assert not patch_grey(cells[0]).any()
        np.testing.assert_array_equal(cells[1][~_pixels(grey1)], cells[0][~_pixels(grey1)])
        # the pasted panel: the image where visible, the reconstruction where removed
        np.testing.assert_array_equal(cells[3][_pixels(grey1)], cells[2][_pixels(grey1)])
        np.testing.assert_array_equal(cells[3][~_pixels(grey1)], cells[0][~_pixels(grey1)])
        if name.startswith("LUT"):
            visible1, visible2 = ~grey1, ~patch_grey(cells[4])
            np.testing.assert_array_equal(~visible2, out.mask2[b].numpy().astype(bool))
            assert visible2.sum() == visible1.sum() > 0
            assert not (visible1 & visible2).any()  # disjoint in the picture


def _pixels(patch_mask: np.ndarray) -> np.ndarray:
    side = SIZE // PATCH
    grid = patch_mask.reshape(side, side)
    return grid.repeat(PATCH, 0).repeat(PATCH, 1)


def test_grid_leaves_the_rng_and_mode_alone():
    model, x = build("LUT"), images()
    model.train()
    state = torch.random.get_rng_state()
    first = reconstruction_grid(model, x, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state) and model.training
    np.testing.assert_array_equal(first, reconstruction_grid(model, x, seed=5))


def test_hook_adds_the_grid_to_the_visualizer(tmp_path):
    model = build("LUT")
    pixels = torch.randint(0, 256, (3, 3, SIZE, SIZE), dtype=torch.uint8)
    batch = dict(inputs=[pixels, pixels.flip(-1)], data_samples=None)
    vis = Visualizer(
        name="vis_test", vis_backends=[dict(type=LocalVisBackend)], save_dir=str(tmp_path)
    )
    runner = types.SimpleNamespace(model=model, epoch=0, max_epochs=2, visualizer=vis)
    hook = ReconstructionVisualizerHook(interval=2, num_images=2, scale=2)
    hook.after_train_iter(runner, 0, batch)
    assert hook.images.shape == (2, 3, SIZE, SIZE)
    hook.after_train_epoch(runner)  # epoch 1 of 2: no picture
    assert not list(tmp_path.rglob("*.png"))
    runner.epoch = 1
    hook.after_train_epoch(runner)
    (png,) = tmp_path.rglob("reconstruction_2.png")
    assert png.stat().st_size > 0


def test_a_model_without_decoder_is_refused_before_training():
    model = MODELS.build(dict(MODEL_CFGS["LUT"], w_mim=0.0))  # L_BC only: nothing to draw
    with pytest.raises(ValueError, match="no decoder"):
        ReconstructionVisualizerHook().before_run(types.SimpleNamespace(model=model))
    with pytest.raises(ValueError, match="no decoder"):
        reconstruct(model, images())
