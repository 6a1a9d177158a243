"""The lightly example's LUT model reproduces the golden LUT step.

``examples/lightly_lut.py`` (timm ViT in lightly's ``MaskedVisionTransformerTIMM``, lightly's
``MaskedVisionTransformerDecoderTIMM``, this package's lightly heads, loss, masks and teacher)
with the golden weights and noise gives the reference implementation's numbers.
"""

from __future__ import annotations

import importlib.util
from functools import partial

import pytest
import torch
from conftest import ROOT
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from lut_plugin.lightly import disjoint_token_masks

ATOL = 1e-5
ENCODER_PREFIXES = ("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.")
_spec = importlib.util.spec_from_file_location("lightly_lut", ROOT / "examples/lightly_lut.py")
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


def _split(state: dict, prefixes: tuple[str, ...]) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def _renamed(state: dict, old: str, new: str) -> dict:
    return {new + k[len(old) :]: v for k, v in state.items() if k.startswith(old)}


def _decoder(state: dict) -> dict:
    """The reference's MAE decoder keys -> MaskedVisionTransformerDecoderTIMM's."""
    return {
        "mask_token": state["mask_token"],
        "pos_embed": state["decoder_pos_embed"],
        **_renamed(state, "decoder_blocks.", "blocks."),
        **_renamed(state, "decoder_norm.", "norm."),
    }


def _heads(state: dict, name: str) -> dict:
    return _renamed(state, f"{name}.", "layers.")


@pytest.fixture(scope="module")
def model(golden):
    cfg, student, teacher = golden["config"], golden["student"], golden["teacher"]
    vit = VisionTransformer(
        img_size=cfg["img_size"], patch_size=cfg["patch_size"], embed_dim=cfg["embed_dim"],
        depth=cfg["depth"], num_heads=cfg["num_heads"], mlp_ratio=4, qkv_bias=True,
        num_classes=0, norm_layer=partial(nn.LayerNorm, eps=1e-6),
    )  # fmt: skip
    lut = example.LUT(
        vit,
        decoder_dim=cfg["decoder_embed_dim"],
        decoder_depth=cfg["decoder_depth"],
        decoder_heads=cfg["decoder_num_heads"],
        head_dim=cfg["projector_hidden"],
    )
    lut.backbone.vit.load_state_dict(_split(student, ENCODER_PREFIXES), strict=True)
    lut.decoder_embed.load_state_dict(_renamed(student, "decoder_embed.", ""), strict=True)
    lut.decoder.load_state_dict(_decoder(student), strict=True)
    lut.prediction_head.load_state_dict(_renamed(student, "decoder_pred.", ""), strict=True)
    lut.projector.load_state_dict(_heads(student, "head"), strict=True)
    lut.predictor.load_state_dict(_heads(student, "predictor"), strict=True)
    lut.teacher["backbone"].vit.load_state_dict(_split(teacher, ENCODER_PREFIXES), strict=True)
    lut.teacher["projector"].load_state_dict(_heads(teacher, "head"), strict=True)
    return lut.train()


@pytest.fixture(scope="module")
def step(golden, model):
    """The golden step through the example's model: its forward and its parts."""
    x1, x2, noise = golden["x1"], golden["x2"], golden["noise"]
    masks = disjoint_token_masks((4, model.sequence_length), 0.75, noise=noise)
    # the forward draws its masks with disjoint_token_masks: hand it the golden noise
    draw = example.disjoint_token_masks
    example.disjoint_token_masks = partial(disjoint_token_masks, noise=noise)
    try:
        loss, loss_mim, loss_bc = model(x1, x2)
    finally:
        example.disjoint_token_masks = draw
    idx_keep1, idx_keep2, _ = masks
    z1 = model.backbone.encode(images=x1, idx_keep=idx_keep1)
    z2 = model.backbone.encode(images=x2, idx_keep=idx_keep2)
    p1, p2 = (model.predictor(model.projector(model.pool(z))) for z in (z1, z2))
    with torch.no_grad():
        t1, t2 = (
            model.teacher["projector"](model.pool(model.teacher["backbone"].encode(images=x)))
            for x in (x1, x2)
        )
    got = dict(loss_mim=loss_mim, loss_bc=loss_bc, p1=p1, p2=p2, t1=t1, t2=t2)
    return golden["expected"], got, masks, loss


@pytest.mark.parametrize("name", ["loss_mim", "loss_bc", "p1", "p2", "t1", "t2"])
def test_matches_golden(step, name):
    expected, got, _, _ = step
    torch.testing.assert_close(got[name], expected[name], atol=ATOL, rtol=0)


def test_total_loss_weights_bc_by_a_quarter(step):
    expected, _, _, loss = step
    want = expected["loss_mim"] + 0.25 * expected["loss_bc"]
    torch.testing.assert_close(loss, want, atol=ATOL, rtol=0)


def test_masks_match_golden(step):
    expected, _, (keep1, keep2, mask1), _ = step
    for keep, mask in ((keep1, expected["mask1"]), (keep2, expected["mask2"])):
        visible = torch.ones(4, 64)
        visible.scatter_(1, keep[:, 1:] - 1, 0.0)  # drop the class token, undo the offset
        assert torch.equal(visible, mask.float())
        assert torch.all(keep[:, 0] == 0)  # both views keep the class token
    # view 1's masked indices are exactly its removed patches (class-token offset)
    removed = torch.zeros(4, 64).scatter_(1, mask1 - 1, 1.0)
    assert torch.equal(removed, expected["mask1"].float())


def test_teacher_is_eval_and_frozen(model):
    assert not model.teacher.training and model.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
