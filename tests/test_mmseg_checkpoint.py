"""LUT pre-training checkpoint -> mmseg backbone: exactness, pos-embed resizing, bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup.mae import MAEViT
from mmpretrain.models.utils import resize_pos_embed
from mmseg.models.backbones import MAE
from utils import load_tool

import lut_plugin  # noqa: F401  (registers LUTMAE)
from lut_plugin.mmseg import LUTMAE
from lut_plugin.runtime import CheckpointError, CheckpointMismatchError

convert_tool = load_tool("convert_checkpoint")
TOL = 1e-5

# A tiny ViT: 32-d, 4 blocks, 2 heads, 8-px patches on 32-px images (4x4 grid).
DIM, DEPTH, HEADS, PATCH, IMG = 32, 4, 2, 8, 32


def make_encoder(dim=DIM, depth=DEPTH, img=IMG, patch=PATCH, seed=0, final_norm=True):
    """An mmpretrain MAEViT (the pre-training encoder) with every tensor random."""
    torch.manual_seed(seed)
    arch = dict(embed_dims=dim, num_layers=depth, num_heads=HEADS, feedforward_channels=4 * dim)
    enc = MAEViT(
        arch=arch,
        img_size=img,
        patch_size=patch,
        out_indices=list(range(depth)),
        final_norm=final_norm,
    )
    enc.init_weights()
    with torch.no_grad():  # LayerNorm affine params and biases away from 1/0 too
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    enc.eval()
    return enc


def write_lut_checkpoint(path: Path, student, teacher=None) -> Path:
    """A checkpoint with the LUT pre-training key layout (see the preamble's contract)."""
    sd = {f"backbone.{k}": v for k, v in student.state_dict().items()}
    if teacher is not None:
        sd.update({f"teacher.backbone.{k}": v for k, v in teacher.state_dict().items()})
        sd["teacher.projector.layers.0.weight"] = torch.randn(16, DIM)
    sd["neck.decoder_pos_embed"] = torch.randn(1, 17, 16)
    sd["neck.decoder_embed.weight"] = torch.randn(16, DIM)
    sd["projector.layers.0.weight"] = torch.randn(16, DIM)
    sd["predictor.layers.0.weight"] = torch.randn(16, 16)
    sd["data_preprocessor.mean"] = torch.zeros(3, 1, 1)
    torch.save({"state_dict": sd, "meta": {"epoch": 1, "iter": 2}}, path)
    return path


def make_seg(path=None, img=IMG, dim=DIM, depth=DEPTH, **kwargs):
    seg = LUTMAE(
        img_size=img,
        patch_size=PATCH,
        embed_dims=dim,
        num_layers=depth,
        num_heads=HEADS,
        mlp_ratio=4,
        out_indices=list(range(depth)),
        norm_cfg=dict(type="LN", eps=1e-6),
        pretrained=None if path is None else str(path),
        **kwargs,
    )
    seg.init_weights()
    seg.eval()
    return seg


def as_featmaps(tokens):
    """(B, 1 + H*W, C) mmpretrain tokens -> (B, C, H, W) patch features."""
    b, n, c = tokens.shape
    side = int((n - 1) ** 0.5)
    return tokens[:, 1:].reshape(b, side, side, c).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def encoders():
    return make_encoder(seed=0), make_encoder(seed=1)


@pytest.fixture(scope="module")
def ckpt(encoders, tmp_path_factory):
    return write_lut_checkpoint(tmp_path_factory.mktemp("ckpt") / "lut.pth", *encoders)


@pytest.mark.parametrize("encoder", ["student", "teacher"])
def test_features_equal_pretraining_encoder(encoders, ckpt, encoder):
    """All four outputs equal MAEViT's (mask=None); the last one includes the final norm ln1."""
    ref_enc = encoders[encoder == "teacher"]
    other_enc = encoders[encoder == "student"]
    seg = make_seg(ckpt, encoder=encoder)
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        ref = [as_featmaps(t) for t in ref_enc(x, mask=None)]
        other = as_featmaps(other_enc(x, mask=None)[-1])
        out = seg(x)
    assert len(out) == DEPTH == len(ref)
    for o, r in zip(out, ref):
        assert o.shape == r.shape == (2, DIM, IMG // PATCH, IMG // PATCH)
        assert (o - r).abs().max().item() <= TOL
    # The last map is the normalised encoder output (ln1 applied), not a pre-norm block output.
    assert (out[-1] - ref[-2]).abs().max() > 0.1
    # ... and it is the chosen encoder, not the other one.
    assert (out[-1] - other).abs().max() > 0.1
    # New parameters start as the identity: layer scale 1, relative position bias 0.
    for layer in seg.layers:
        assert torch.equal(layer.gamma_1, torch.ones(DIM))
        assert torch.equal(layer.gamma_2, torch.ones(DIM))
        assert not layer.attn.relative_position_bias_table.any()


def test_init_cfg_with_explicit_prefix(encoders, ckpt):
    """``init_cfg=dict(type='Pretrained', prefix=...)`` works as well as ``pretrained=``."""
    seg = LUTMAE(
        img_size=IMG, patch_size=PATCH, embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS,
        out_indices=[DEPTH - 1], norm_cfg=dict(type="LN", eps=1e-6),
        init_cfg=dict(type="Pretrained", checkpoint=str(ckpt), prefix="teacher.backbone."),
    )  # fmt: skip
    seg.init_weights()
    seg.eval()
    x = torch.randn(1, 3, IMG, IMG)
    with torch.no_grad():
        diff = (seg(x)[0] - as_featmaps(encoders[1](x, mask=None)[-1])).abs().max().item()
    assert diff <= TOL


def test_final_norm_false_skips_ln1_and_matches_prenorm_features(encoders, ckpt):
    """mmseg's MAE recipe (final_norm=False): ln1 is skipped explicitly, blocks match exactly."""
    seg = make_seg(ckpt, final_norm=False)
    assert not hasattr(seg, "ln1")
    ref_enc = make_encoder(seed=0, final_norm=False)
    sd = {k: v for k, v in encoders[0].state_dict().items() if not k.startswith("ln1.")}
    ref_enc.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        ref = [as_featmaps(t) for t in ref_enc(x, mask=None)]
        out = seg(x)
    for o, r in zip(out, ref):
        assert (o - r).abs().max().item() <= TOL
    assert seg.load_pretrained(str(ckpt)) == ["ln1.weight", "ln1.bias"]


def test_pos_embed_resized_bicubic_cls_kept(encoders, ckpt):
    """4x4 -> 8x8 grid: cls position kept, grid bicubic; features equal MAEViT at 64 px."""
    seg = make_seg(ckpt, img=2 * IMG)
    src = encoders[0].pos_embed.detach()
    assert seg.pos_embed.shape == (1, 1 + 64, DIM)
    assert torch.equal(seg.pos_embed[:, 0], src[:, 0])
    grid = src[:, 1:].reshape(1, 4, 4, DIM).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False)
    want = want.permute(0, 2, 3, 1).reshape(1, 64, DIM)
    assert torch.allclose(seg.pos_embed[:, 1:], want, atol=1e-6)
    # mmpretrain's ViT resizes its pos_embed on the fly the same way for a larger input.
    x = torch.randn(1, 3, 2 * IMG, 2 * IMG)
    with torch.no_grad():
        ref = as_featmaps(encoders[0](x, mask=None)[-1])
        out = seg(x)[-1]
    assert out.shape == (1, DIM, 8, 8)
    assert (out - ref).abs().max().item() <= TOL


def test_pos_embed_224_to_512_patch16(tmp_path):
    """The real fine-tuning geometry: 14x14 -> 32x32 patches, one narrow block."""
    enc = make_encoder(dim=16, depth=1, img=224, patch=16)
    path = write_lut_checkpoint(tmp_path / "p16.pth", enc)
    seg = LUTMAE(
        img_size=512, patch_size=16, embed_dims=16, num_layers=1, num_heads=HEADS,
        out_indices=[0], norm_cfg=dict(type='LN', eps=1e-6), pretrained=str(path),
    )  # fmt: skip
    seg.init_weights()
    seg.eval()
    assert seg.pos_embed.shape == (1, 1 + 32 * 32, 16)
    expected = resize_pos_embed(enc.pos_embed.detach(), (14, 14), (32, 32))
    assert torch.allclose(seg.pos_embed, expected, atol=1e-6)
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        diff = (seg(x)[0] - as_featmaps(enc(x, mask=None)[0])).abs().max().item()
    assert diff <= TOL


def test_converter_roundtrip_and_upstream_mae(encoders, ckpt, tmp_path, capsys):
    """tools/convert_checkpoint.py --to mmseg: loads strictly into LUTMAE and into mmseg's MAE."""
    outs = {}
    for encoder in ("student", "teacher"):
        dst = tmp_path / f"{encoder}.pth"
        convert_tool.main(["--to", "mmseg", "--encoder", encoder, str(ckpt), str(dst)])
        stdout = capsys.readouterr().out
        assert f"{encoder} encoder" in stdout and f"{DEPTH} blocks, width {DIM}" in stdout
        saved = torch.load(dst, weights_only=True)
        assert saved["meta"]["lut_export"]["encoder"] == encoder
        assert set(saved["state_dict"]) == set(encoders[0].state_dict())
        x = torch.randn(1, 3, IMG, IMG)
        with torch.no_grad():
            direct = make_seg(ckpt, encoder=encoder)(x)[-1]
            via_file = make_seg(dst, encoder=encoder)(x)[-1]
        assert torch.equal(direct, via_file)
        outs[encoder] = (dst, direct, x)
    # The exported student file works as `pretrained=` of mmseg's own MAE backbone.
    dst, direct, x = outs["student"]
    mae = MAE(
        img_size=IMG, patch_size=PATCH, embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS,
        out_indices=list(range(DEPTH)), norm_cfg=dict(type='LN', eps=1e-6), init_values=1.0,
        final_norm=True, pretrained=str(dst),
    )  # fmt: skip
    mae.init_weights()
    with torch.no_grad():
        mae.eval()
        assert (mae(x)[-1] - direct).abs().max().item() <= TOL
    # A student export is not silently used where the teacher was asked for.
    with pytest.raises(CheckpointMismatchError, match=r"exported from the 'student' encoder"):
        make_seg(dst, encoder="teacher")


# ----------------------------------------------------------------------------- bad inputs


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope" / "epoch_400.pth"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        make_seg(path)


def test_not_a_checkpoint_names_it(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=re.escape(repr(str(path)))):
        make_seg(path)


def test_non_lut_checkpoint_names_file_and_keys(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(8, 3, 7, 7)}}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        make_seg(path)
    msg = str(err.value)
    assert str(path) in msg and "not a LUT/MAE" in msg and "conv1.weight" in msg

    # backbone.* keys, but not a ViT encoder
    path2 = tmp_path / "resnet_mm.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(8, 3, 7, 7)}}, path2)
    with pytest.raises(CheckpointMismatchError) as err:
        make_seg(path2)
    msg = str(err.value)
    assert str(path2) in msg
    assert "unexpected in checkpoint: conv1.weight [8, 3, 7, 7]" in msg
    assert "missing in checkpoint: cls_token [1, 1, 32]" in msg


def test_teacher_missing_in_mae_checkpoint(tmp_path, encoders):
    path = write_lut_checkpoint(tmp_path / "mae.pth", encoders[0])  # no teacher
    with pytest.raises(CheckpointMismatchError, match="no 'teacher.backbone.\\*' keys") as err:
        make_seg(path, encoder="teacher")
    assert str(path) in str(err.value)


def test_width_mismatch_lists_shapes(tmp_path):
    path = write_lut_checkpoint(tmp_path / "wide.pth", make_encoder(dim=48))
    with pytest.raises(CheckpointMismatchError) as err:
        make_seg(path)
    msg = str(err.value)
    assert str(path) in msg and "embed_dims=32" in msg
    assert "shape mismatch: cls_token: checkpoint [1, 1, 48] vs model [1, 1, 32]" in msg


@pytest.mark.parametrize("ckpt_depth,needle", [(2, "missing"), (6, "unexpected")])
def test_depth_mismatch_lists_keys(tmp_path, ckpt_depth, needle):
    path = write_lut_checkpoint(tmp_path / f"d{ckpt_depth}.pth", make_encoder(depth=ckpt_depth))
    with pytest.raises(CheckpointMismatchError) as err:
        make_seg(path)
    msg = str(err.value)
    assert str(path) in msg and "num_layers=4" in msg
    first = "layers.2.ln1.weight [32]" if needle == "missing" else "layers.4.ln1.weight [32]"
    assert f"{needle} in checkpoint: {first}" in msg
    assert "shape mismatch" not in msg


def test_init_values_must_be_one(ckpt):
    with pytest.raises(ValueError, match="init_values=0.1"):
        make_seg(ckpt, init_values=0.1)
