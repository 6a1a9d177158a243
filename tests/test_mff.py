"""LUT's broader-context branch on MFF (a third mmpretrain MIM method): ``LUTMFFViT``."""

from __future__ import annotations

import torch
from conftest import ROOT, build_tiny_lut, tiny_lut_cfg
from mmengine.config import Config
from mmpretrain.registry import MODELS

MFF = dict(type="LUTMFFViT", out_indices=[0, 1])  # the tiny encoder's 2 blocks fused


def _views(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 32, 32, generator=gen) for _ in range(2)]


def test_a_toy_step_runs_and_l_bc_reaches_the_fused_encoder():
    model = build_tiny_lut(backbone=MFF)
    model.train()
    losses = model.loss(_views(), noise=torch.rand(4, 64, generator=torch.Generator()))
    assert set(losses) == {"loss_mim", "loss_bc"} and all(
        torch.isfinite(v) for v in losses.values()
    )
    losses["loss_bc"].backward()  # L_BC alone
    backbone = model.backbone
    for name, param in (
        ("proj_layers.0.weight", backbone.proj_layers[0].weight),  # block 0's projection
        ("proj_weights", backbone.proj_weights),  # the fusion weights
        ("layers.0.attn.qkv.weight", backbone.layers[0].attn.qkv.weight),
        ("patch_embed", backbone.patch_embed.projection.weight),
    ):
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert model.neck.decoder_pred.weight.grad is None  # L_MIM was not backpropagated
    assert all(p.grad is None for p in model.teacher.parameters())
    # the teacher encodes the full views with the fusion too
    assert type(model.teacher["backbone"]).__name__ == "LUTMFFViT"


def test_without_l_bc_the_loss_is_upstream_mffs_on_the_same_weights_and_noise():
    lut = build_tiny_lut(backbone=MFF, w_bc=0.0, projector=None, predictor=None)
    cfg = tiny_lut_cfg(backbone={**MFF, "type": "MFFViT"})
    mff = MODELS.build(
        dict(type="MFF", backbone=cfg["backbone"], neck=cfg["neck"], head=cfg["head"])
    )
    missing, unexpected = mff.load_state_dict(lut.state_dict(), strict=False)
    assert [k for k in missing if not k.startswith("data_preprocessor")] == [] and unexpected == []
    with torch.no_grad():  # fusion weights that are not uniform
        for m in (lut, mff):
            m.backbone.proj_weights.copy_(torch.tensor([0.3, -0.2]).view(-1, 1, 1, 1))
    x1, x2 = _views(seed=3)
    torch.manual_seed(123)
    expected = mff.loss(x1, data_samples=None)["loss"]
    torch.manual_seed(123)
    noise = torch.rand(4, 64)  # the draw MFFViT's random_masking makes after the same seed
    assert set(lut.loss([x1, x2], noise=noise)) == {"loss_mim"}
    out = lut.forward_lut(x1, x2, noise=noise)
    torch.testing.assert_close(out.loss_mim, expected, atol=1e-6, rtol=0)


def test_the_vitb_config_is_upstream_mff_with_lut():
    cfg = Config.fromfile(ROOT / "configs/mmpretrain/lut-mff_vitb_300e.py")
    assert cfg.model.type == "LUT" and cfg.model.w_bc == 0.25
    assert cfg.model.backbone.type == "LUTMFFViT"
    assert cfg.model.backbone.out_indices == [0, 2, 4, 6, 8, 11]  # MFF's, from its config
    assert cfg.model.neck.type == "MAEPretrainDecoder" and cfg.model.head.norm_pix
