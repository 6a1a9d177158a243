"""LUT's SimMIM flavour: the SimMIM ViT encoder, block-wise disjoint masks and LUTSimMIM."""

from __future__ import annotations

import copy

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from lut_plugin.core import LinearGELU
from lut_plugin.models import LUTSimMIM, LUTSimMIMViT

IMG, PATCH, MASK_PATCH, DIM = 32, 4, 8, 64
GRID = IMG // PATCH  # 8x8 patches
BLOCKS = IMG // MASK_PATCH  # 4x4 mask blocks of 2x2 patches
KEEP_BLOCKS = int(BLOCKS * BLOCKS * (1 - 0.6))  # 6 of 16 blocks visible per view


def tiny_backbone_cfg(**overrides) -> dict:
    cfg = dict(
        type="LUTSimMIMViT",
        arch=dict(embed_dims=DIM, num_layers=2, num_heads=4, feedforward_channels=4 * DIM),
        img_size=IMG,
        patch_size=PATCH,
        mask_patch_size=MASK_PATCH,
        mask_ratio=0.6,
        use_shared_rel_pos_bias=True,
        layer_scale_init_value=0.1,
        init_cfg=[
            dict(type="TruncNormal", std=0.02, layer="Linear"),
            dict(type="TruncNormal", std=0.02, layer="Conv2d"),
            dict(type="Constant", layer="LayerNorm", val=1.0, bias=0.0),
        ],
    )
    cfg.update(overrides)
    return cfg


def tiny_lut_simmim_cfg(**overrides) -> dict:
    cfg = dict(
        type="LUTSimMIM",
        backbone=tiny_backbone_cfg(),
        neck=dict(type="SimMIMLinearDecoder", in_channels=DIM, encoder_stride=PATCH),
        head=dict(
            type="SimMIMHead",
            patch_size=PATCH,
            loss=dict(type="PixelReconstructionLoss", criterion="L1", channel=3),
        ),
        projector=dict(type="LUTProjectionMLP", in_channels=DIM, hid_channels=128),
        predictor=dict(type="LUTProjectionMLP", in_channels=DIM, hid_channels=128),
        w_mim=1.0,
        w_bc=0.25,
    )
    cfg.update(overrides)
    return copy.deepcopy(cfg)


def build(cfg: dict):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def views(batch: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 3, IMG, IMG, generator=gen),
        torch.randn(batch, 3, IMG, IMG, generator=gen),
    )


def hand_noise(batch: int) -> torch.Tensor:
    """Noise whose sort order is 0, 1, ..., 15: view 1 keeps blocks 0-5, view 2 blocks 6-11."""
    return torch.arange(BLOCKS * BLOCKS, dtype=torch.float).repeat(batch, 1)


def hand_masks() -> tuple[torch.Tensor, torch.Tensor]:
    """The patch-level masks ``hand_noise`` must give, written out by hand (1 = masked)."""
    m1 = torch.ones(GRID, GRID)
    m1[0:2, :] = 0  # blocks 0-3: first block row -> patch rows 0-1
    m1[2:4, 0:4] = 0  # blocks 4, 5: second block row, block columns 0-1
    m2 = torch.ones(GRID, GRID)
    m2[2:4, 4:8] = 0  # blocks 6, 7
    m2[4:6, :] = 0  # blocks 8-11
    return m1.flatten(), m2.flatten()


@pytest.fixture(scope="module")
def model() -> LUTSimMIM:
    return build(tiny_lut_simmim_cfg())


# -- masks -------------------------------------------------------------------
def test_hand_made_noise_gives_the_hand_made_masks(model):
    masks = model.backbone.masks_from_noise(hand_noise(2))
    m1, m2 = hand_masks()
    assert torch.equal(masks.mask1, m1.expand(2, -1))
    assert torch.equal(masks.mask2, m2.expand(2, -1))


def test_random_masks_are_blockwise_disjoint_and_simmim_sized(model):
    noise = torch.rand(8, BLOCKS * BLOCKS, generator=torch.Generator().manual_seed(3))
    masks = model.backbone.masks_from_noise(noise)
    visible_per_view = KEEP_BLOCKS * (MASK_PATCH // PATCH) ** 2
    for mask in (masks.mask1, masks.mask2):
        assert mask.shape == (8, GRID * GRID)
        assert torch.all((1 - mask).sum(dim=1) == visible_per_view)
        # Whole 2x2 patch blocks are masked together.
        grid = mask.reshape(8, BLOCKS, 2, BLOCKS, 2)
        assert torch.all(grid.amax(dim=(2, 4)) == grid.amin(dim=(2, 4)))
    # The two visible sets never overlap.
    assert torch.all(((1 - masks.mask1) * (1 - masks.mask2)).sum(dim=1) == 0)
    # View 1's visible blocks are the first `keep` of the sorted noise.
    expected = torch.ones(8, BLOCKS * BLOCKS)
    expected.scatter_(1, noise.argsort(dim=1)[:, :KEEP_BLOCKS], 0.0)
    view1_blocks = masks.mask1.reshape(8, BLOCKS, 2, BLOCKS, 2)[:, :, 0, :, 0].flatten(1)
    assert torch.equal(view1_blocks, expected)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(mask_ratio=0.4), "disjoint"),
        (dict(mask_ratio=0.97), "leaves no visible patch"),
        (dict(mask_patch_size=6), "multiple of the patch size"),
        (dict(mask_patch_size=12), "multiple of mask_patch_size"),
    ],
)
def test_bad_mask_settings_raise_at_build_time(overrides, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(tiny_backbone_cfg(**overrides))


def test_wrong_noise_shape_raises(model):
    x1, x2 = views(2)
    with pytest.raises(RuntimeError):  # patch-level noise where block-level noise belongs
        model.backbone.forward_views(x1, x2, torch.rand(2, GRID * GRID))


# -- encoder -----------------------------------------------------------------
def test_unmasked_encoding_matches_the_upstream_beit_forward(model):
    backbone = model.backbone
    backbone.eval()  # mmpretrain backbones' train() returns None
    x, _ = views(2)
    with torch.no_grad():
        upstream = backbone(x)[0]  # BEiTViT forward, out_type='raw'
        ours = backbone.forward_full(x)
        no_mask = backbone.encode_masked(x, torch.zeros(2, GRID * GRID))
    assert ours.shape == (2, 1 + GRID * GRID, DIM)
    # Up to float rounding: the patch embedding is a matrix product here, a convolution there.
    torch.testing.assert_close(ours, upstream, rtol=0, atol=1e-5)
    torch.testing.assert_close(no_mask, ours, rtol=0, atol=0)
    backbone.train()


def test_masked_patches_are_replaced_by_the_mask_token(model):
    backbone = model.backbone
    backbone.eval()  # mmpretrain backbones' train() returns None
    x, _ = views(2)
    m1, _ = hand_masks()
    mask = m1.expand(2, -1)
    x_changed = x.clone()
    # Rewrite the pixels of every masked patch (patch rows 4-7 are all masked in m1).
    x_changed[:, :, 4 * PATCH :, :] = torch.randn_like(x_changed[:, :, 4 * PATCH :, :]) * 5
    with torch.no_grad():
        a = backbone.encode_masked(x, mask)
        b = backbone.encode_masked(x_changed, mask)
        c = backbone.encode_masked(x_changed, torch.zeros_like(mask))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    # With a mask, forward() gives SimMIMLinearDecoder's (B, C, H/p, W/p) map.
    with torch.no_grad():
        (featmap,) = backbone(x, mask.reshape(2, GRID, GRID))
    assert featmap.shape == (2, DIM, GRID, GRID)
    torch.testing.assert_close(featmap.flatten(2).transpose(1, 2), a[:, 1:], rtol=0, atol=0)
    backbone.train()


# -- LUTSimMIM ---------------------------------------------------------------
def test_loss_is_finite_and_weighted():
    model = build(tiny_lut_simmim_cfg())
    model.train()
    x1, x2 = views(4)
    torch.manual_seed(5)
    losses = model.loss([x1, x2])
    assert set(losses) == {"loss_mim", "loss_bc"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    torch.manual_seed(5)
    out = model.forward_lut(x1, x2)
    torch.testing.assert_close(losses["loss_mim"], out.loss_mim)
    torch.testing.assert_close(losses["loss_bc"], 0.25 * out.loss_bc)
    sum(losses.values()).backward()
    assert model.backbone.mask_token.grad.abs().sum() > 0
    assert model.neck.decoder[0].weight.grad.abs().sum() > 0
    for head in (model.projector, model.predictor):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_bc_only_variant_builds_without_decoder():
    model = build(tiny_lut_simmim_cfg(w_mim=0.0, neck=None, head=None))
    assert not model.with_neck and not model.with_head
    losses = model.loss(list(views(4)))
    assert set(losses) == {"loss_bc"} and torch.isfinite(losses["loss_bc"])


def test_pixel_loss_covers_exactly_the_masked_pixels_of_view_1(model):
    x1, x2 = views(2)
    noise = hand_noise(2)
    model.eval()
    with torch.no_grad():
        out = model.forward_lut(x1, x2, noise)
        z1, _, masks = model.backbone.forward_views(x1, x2, noise)
        rec = model.neck(model.backbone.tokens_to_featmap(z1))
    m1, _ = hand_masks()
    pixel_mask = m1.reshape(GRID, GRID).repeat_interleave(PATCH, 0).repeat_interleave(PATCH, 1)
    pixel_mask = pixel_mask.expand(2, 3, IMG, IMG).bool()
    # Mean absolute error over the masked pixels (all channels) of view 1, by hand.
    expected = (rec - x1).abs()[pixel_mask].mean()
    torch.testing.assert_close(out.loss_mim, expected)
    # Targets of visible pixels do not matter; those of masked pixels do.
    grid_mask = masks.mask1.reshape(2, GRID, GRID)
    target = x1.clone()
    target[~pixel_mask] = 100.0
    torch.testing.assert_close(model.head.loss(rec, target, grid_mask), out.loss_mim)
    target = x1.clone()
    target[:, :, -1, -1] += 10.0  # bottom-right pixel: masked in view 1
    assert not torch.allclose(model.head.loss(rec, target, grid_mask), out.loss_mim)
    model.train()


def test_student_pools_only_unmasked_positions(model, monkeypatch):
    x1, x2 = views(4)
    noise = hand_noise(4)
    model.eval()  # BN on running statistics: outputs depend on each sample alone
    with torch.no_grad():
        ref = model.forward_lut(x1, x2, noise)

    original = model.backbone.forward_views

    def perturbed(where: str):
        def forward_views(a, b, n=None):
            z1, z2, masks = original(a, b, n)
            z1, z2 = z1.clone(), z2.clone()
            for z, mask in ((z1, masks.mask1), (z2, masks.mask2)):
                sel = mask.bool() if where == "masked" else ~mask.bool()
                patch = z[:, 1:]
                patch[sel] = patch[sel] + 3.0 * torch.randn_like(patch[sel])
                z[:, 0] = z[:, 0] + 7.0  # the cls token is not pooled either
            return z1, z2, masks

        return forward_views

    with torch.no_grad():
        monkeypatch.setattr(model.backbone, "forward_views", perturbed("masked"))
        same = model.forward_lut(x1, x2, noise)
        monkeypatch.setattr(model.backbone, "forward_views", perturbed("visible"))
        moved = model.forward_lut(x1, x2, noise)
    monkeypatch.setattr(model.backbone, "forward_views", original)
    model.train()
    torch.testing.assert_close(same.p1, ref.p1, rtol=0, atol=0)
    torch.testing.assert_close(same.p2, ref.p2, rtol=0, atol=0)
    torch.testing.assert_close(same.loss_bc, ref.loss_bc, rtol=0, atol=0)
    assert not torch.allclose(moved.p1, ref.p1)
    assert not torch.allclose(moved.p2, ref.p2)


def test_teacher_pools_all_positions_of_the_full_views(model):
    x1, x2 = views(4)
    model.eval()
    with torch.no_grad():
        out = model.forward_lut(x1, x2, hand_noise(4))
        teacher = model.teacher
        for x, t in ((x1, out.t1), (x2, out.t2)):
            pooled = teacher["backbone"].forward_full(x)[:, 1:].mean(dim=1)
            torch.testing.assert_close(t, teacher["projector"](pooled), rtol=0, atol=1e-6)
    model.train()


def test_pool_is_the_mean_of_the_unmasked_patch_tokens(model):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(3, 11, 5, generator=gen)  # cls + 10 patch tokens
    mask = (torch.rand(3, 10, generator=gen) > 0.5).float()
    mask[:, 0] = 0  # at least one visible position per sample
    pooled = model.pool(tokens, mask)
    for b in range(3):
        torch.testing.assert_close(pooled[b], tokens[b, 1:][mask[b] == 0].mean(dim=0))


def test_upstream_simmim_runs_with_the_vit_encoder():
    model = build(
        dict(
            type="SimMIM",
            backbone=tiny_backbone_cfg(),
            neck=dict(type="SimMIMLinearDecoder", in_channels=DIM, encoder_stride=PATCH),
            head=dict(
                type="SimMIMHead",
                patch_size=PATCH,
                loss=dict(type="PixelReconstructionLoss", criterion="L1", channel=3),
            ),
        )
    )
    x, _ = views(2)
    m1, _ = hand_masks()
    samples = [DataSample().set_mask(m1.reshape(GRID, GRID).long()) for _ in range(2)]
    model.eval()
    with torch.no_grad():
        loss = model.loss(x, samples)["loss"]
        rec = model.neck(model.backbone(x, m1.expand(2, -1).reshape(2, GRID, GRID))[0])
    pixel_mask = m1.reshape(GRID, GRID).repeat_interleave(PATCH, 0).repeat_interleave(PATCH, 1)
    expected = (rec - x).abs()[pixel_mask.expand(2, 3, IMG, IMG).bool()].mean()
    torch.testing.assert_close(loss, expected)
    assert isinstance(model.backbone, LUTSimMIMViT)


def test_fused_teacher_gelu_in_the_simmim_flavour():
    fused, model = build(tiny_lut_simmim_cfg(fuse_teacher_gelu=True)), build(tiny_lut_simmim_cfg())
    assert sum(isinstance(m, LinearGELU) for m in fused.teacher.modules()) == 2
    assert not any(isinstance(m, LinearGELU) for m in fused.backbone.modules())
    x1, x2 = views()
    noise = torch.rand(4, BLOCKS * BLOCKS, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, ref = fused.forward_lut(x1, x2, noise), model.forward_lut(x1, x2, noise)
    gap = max((out.t1 - ref.t1).abs().max().item(), (out.t2 - ref.t2).abs().max().item())
    assert 0 < gap < 1e-3  # tanh GELU in the teacher only
    torch.testing.assert_close(out.loss_mim, ref.loss_mim)
