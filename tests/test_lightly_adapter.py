"""The lightly adapter reproduces the golden LUT step with lightly's own MAE modules.

timm ViT + lightly ``MaskedVisionTransformerTIMM`` / ``MAEDecoderTIMM`` + this package's
lightly heads, loss, masks and teacher: the same numbers as the reference implementation.
"""

from __future__ import annotations

import warnings
from functools import partial

import pytest
import torch
from conftest import GOLDEN
from lightly.models import utils
from lightly.models.modules import MaskedVisionTransformerTIMM
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from lut_plugin.lightly import (
    BroaderContextLoss,
    LUTPredictionHead,
    LUTProjectionHead,
    MomentumTeacher,
    disjoint_token_masks,
)

ATOL = 1e-5
ENCODER_PREFIXES = ("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.")


def _split(state: dict, prefixes: tuple[str, ...]) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def _heads(state: dict, name: str) -> dict:
    return {f"layers.{k[len(name) + 1 :]}": v for k, v in state.items() if k.startswith(name + ".")}


@pytest.fixture(scope="module")
def lightly_step():
    from lightly.models.modules.masked_autoencoder_timm import MAEDecoderTIMM

    g = torch.load(GOLDEN, weights_only=True)
    vit = VisionTransformer(
        img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4,
        qkv_bias=True, num_classes=0, global_pool="", norm_layer=partial(nn.LayerNorm, eps=1e-6),
    )  # fmt: skip
    vit.load_state_dict(_split(g["student"], ENCODER_PREFIXES), strict=True)
    encoder = MaskedVisionTransformerTIMM(vit=vit, weight_initialization="skip")
    with torch.no_grad():  # MaskedVisionTransformerTIMM re-initialises the position embedding
        vit.pos_embed.copy_(g["student"]["pos_embed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lightly deprecates MAEDecoderTIMM's name only
        decoder = MAEDecoderTIMM(
            num_patches=64, patch_size=4, embed_dim=64, decoder_embed_dim=32, decoder_depth=1,
            decoder_num_heads=4,
        )  # fmt: skip
    decoder.load_state_dict(_split(g["student"], ("decoder_", "mask_token")), strict=True)
    projector, predictor = LUTProjectionHead(64, 128), LUTPredictionHead(64, 128)
    projector.load_state_dict(_heads(g["student"], "head"), strict=True)
    predictor.load_state_dict(_heads(g["student"], "predictor"), strict=True)
    teacher = MomentumTeacher({"encoder": encoder, "projector": projector})
    teacher["encoder"].vit.load_state_dict(_split(g["teacher"], ENCODER_PREFIXES), strict=True)
    teacher["projector"].load_state_dict(_heads(g["teacher"], "head"), strict=True)

    x1, x2 = g["x1"], g["x2"]
    idx_keep1, idx_keep2, idx_mask1 = disjoint_token_masks((4, 65), 0.75, noise=g["noise"])
    z1 = encoder.encode(x1, idx_keep=idx_keep1)
    z2 = encoder.encode(x2, idx_keep=idx_keep2)
    # MIM on view 1, lightly's MAE recipe, with per-patch normalised targets.
    tokens = utils.repeat_token(decoder.mask_token, (4, 65))
    tokens = utils.set_at_index(tokens, idx_keep1, decoder.embed(z1).type_as(tokens))
    pred = decoder.predict(utils.get_at_index(decoder.decode(tokens), idx_mask1))
    target = utils.get_at_index(utils.patchify(x1, 4), idx_mask1 - 1)
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    loss_mim = ((pred - target) ** 2).mean()
    # Broader context: student pools visible tokens, heads per view; teacher sees full views.
    p1 = predictor(projector(z1[:, 1:].mean(1)))
    p2 = predictor(projector(z2[:, 1:].mean(1)))
    with torch.no_grad():
        t1 = teacher["projector"](teacher["encoder"].encode(x1)[:, 1:].mean(1))
        t2 = teacher["projector"](teacher["encoder"].encode(x2)[:, 1:].mean(1))
    loss_bc = BroaderContextLoss()(p1, p2, t1, t2)
    masks = (idx_keep1, idx_keep2)
    return (
        g["expected"],
        dict(loss_mim=loss_mim, loss_bc=loss_bc, p1=p1, p2=p2, t1=t1, t2=t2),
        masks,
    )


@pytest.mark.parametrize("name", ["loss_mim", "loss_bc", "p1", "p2", "t1", "t2"])
def test_matches_golden(lightly_step, name):
    expected, got, _ = lightly_step
    torch.testing.assert_close(got[name], expected[name], atol=ATOL, rtol=0)


def test_masks_match_golden(lightly_step):
    expected, _, (keep1, keep2) = lightly_step
    for keep, mask in ((keep1, expected["mask1"]), (keep2, expected["mask2"])):
        visible = torch.ones(4, 64)
        visible.scatter_(1, keep[:, 1:] - 1, 0.0)  # drop the class token, undo the offset
        assert torch.equal(visible, mask.float())
        assert torch.all(keep[:, 0] == 0)  # both views keep the class token
