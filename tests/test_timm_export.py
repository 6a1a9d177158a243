"""``tools/convert_checkpoint.py --to timm``: timm's ViT loads the encoder strictly and agrees.

ViT-S (DeiT-S geometry, mmpretrain arch ``'deit-s'``) and ViT-B run on 32-px images (a 2x2 patch
grid: timm's ``img_size=32`` and this project's ``img_size=32`` build the same position
embedding shape); the 224-px key/shape check, ViT-L included, runs on the meta device.
"""

from __future__ import annotations

import functools

import pytest
import timm
import torch
from conftest import build_tiny_lut
from safetensors import safe_open
from safetensors.torch import load_file
from utils import load_tool

from lut_plugin.convert import encoder_to_timm, timm_to_mmpretrain_key
from lut_plugin.models import LUTViT

convert_tool = load_tool("convert_checkpoint")

mmpretrain_to_timm_key = functools.partial(timm_to_mmpretrain_key, to_timm=True)
ATOL = 1e-5
SIZES = {  # mmpretrain arch -> timm model
    "deit-s": "vit_small_patch16_224",
    "b": "vit_base_patch16_224",
    "l": "vit_large_patch16_224",
}


# -- the key mapping ---------------------------------------------------------------
def test_inverse_mapping_round_trips_every_lut_key():
    """Every student key of a LUT model has a timm name that maps back to it."""
    keys = [k for k in build_tiny_lut().state_dict() if not k.startswith("teacher.")]
    assert {k.split(".")[0] for k in keys} >= {"backbone", "neck", "projector", "predictor"}
    for key in keys:
        timm_key = mmpretrain_to_timm_key(key)
        assert timm_to_mmpretrain_key(timm_key) == key
    # hand-checked examples
    assert mmpretrain_to_timm_key("backbone.layers.3.ffn.layers.0.0.weight") == (
        "blocks.3.mlp.fc1.weight"
    )
    assert mmpretrain_to_timm_key("backbone.layers.0.ln2.bias") == "blocks.0.norm2.bias"
    assert mmpretrain_to_timm_key("backbone.ln1.weight") == "norm.weight"
    assert mmpretrain_to_timm_key("neck.ln1.bias") == "decoder_norm.bias"
    assert mmpretrain_to_timm_key("projector.mlp.layers.1.weight") == "head.1.weight"


@pytest.mark.parametrize("key", ["backbone.ln2.weight", "backbone.mask_token", "head.fc.weight"])
def test_keys_without_timm_name_are_refused_by_name(key):
    with pytest.raises(KeyError, match=key.replace(".", r"\.")):
        mmpretrain_to_timm_key(key)


@pytest.mark.parametrize("arch", sorted(SIZES))
def test_224px_encoder_has_exactly_timms_keys_and_shapes(arch):
    """The paper's sizes at 224 px, on the meta device: keys and shapes of timm's model."""
    with torch.device("meta"):
        backbone = LUTViT(arch=arch, img_size=224, patch_size=16)
        reference = timm.create_model(SIZES[arch], pretrained=False, num_classes=0)
    exported = encoder_to_timm(backbone.state_dict())
    assert {k: v.shape for k, v in exported.items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    assert convert_tool.check_loads_in_timm(exported, "test") == SIZES[arch]


# -- export and features ------------------------------------------------------------
def _random_encoder(arch: str, seed: int) -> LUTViT:
    """A 32-px LUTViT with every tensor random (built on the meta device: no slow init)."""
    with torch.device("meta"):
        backbone = LUTViT(arch=arch, img_size=32, patch_size=16)
    backbone.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in backbone.state_dict().values():
            tensor.normal_(0.0, 0.2, generator=gen)
    backbone.eval()
    return backbone


def _write_checkpoint(arch: str, path) -> dict[str, LUTViT]:
    """A LUT-style checkpoint of one size: student and teacher encoders differ."""
    student, teacher = _random_encoder(arch, 0), _random_encoder(arch, 1)
    state = {f"backbone.{k}": v for k, v in student.state_dict().items()}
    state.update({f"teacher.backbone.{k}": v for k, v in teacher.state_dict().items()})
    torch.save({"state_dict": state, "meta": {"epoch": 1}}, path)
    return {"student": student, "teacher": teacher}


@pytest.fixture(scope="module", params=["deit-s", "b"])
def pretraining_checkpoint(request, tmp_path_factory):
    arch = request.param
    path = tmp_path_factory.mktemp(f"ckpt-{arch}") / "epoch_1.pth"
    return arch, path, _write_checkpoint(arch, path)


@pytest.mark.parametrize(("encoder", "suffix"), [("student", ".safetensors"), ("teacher", ".pth")])
def test_timm_model_gives_the_same_features(pretraining_checkpoint, tmp_path, encoder, suffix):
    arch, path, encoders = pretraining_checkpoint
    dst = tmp_path / f"encoder{suffix}"
    convert_tool.main(["--to", "timm", str(path), str(dst), "--encoder", encoder])

    if suffix == ".safetensors":
        state_dict = load_file(dst)
        with safe_open(dst, framework="pt") as f:
            assert f.metadata()["encoder"] == encoder
    else:
        state_dict = torch.load(dst, weights_only=True)
    with torch.device("meta"):  # no random init: every tensor comes from the file
        model = timm.create_model(SIZES[arch], pretrained=False, num_classes=0, img_size=32)
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.eval()

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = encoders[encoder].forward_full(x)  # (B, 1 + L, C) after the final norm
        theirs = model.forward_features(x)
        pooled = model(x)  # num_classes=0, global_pool='token': the cls token
    assert theirs.shape == ours.shape == (2, 5, model.embed_dim)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, ours[:, 0], atol=ATOL, rtol=0)
    # the other encoder really is different
    other = encoders["teacher" if encoder == "student" else "student"]
    with torch.no_grad():
        assert not torch.allclose(other.forward_full(x), theirs, atol=1e-3)


def test_bad_output_suffix_is_refused(pretraining_checkpoint, tmp_path):
    _, path, _ = pretraining_checkpoint
    with pytest.raises(ValueError, match=r"\.safetensors, \.pth or \.pt"):
        convert_tool.convert_to_timm(str(path), str(tmp_path / "encoder.bin"))


def test_timm_loads_the_file_through_its_own_pretrained_path(tmp_path):
    """The documented route: ``create_model(..., pretrained=True, pretrained_cfg_overlay=...)``."""
    encoders = _write_checkpoint("deit-s", tmp_path / "epoch_1.pth")
    dst = tmp_path / "encoder.safetensors"
    convert_tool.main(["--to", "timm", str(tmp_path / "epoch_1.pth"), str(dst)])
    model = timm.create_model(
        SIZES["deit-s"], pretrained=True, pretrained_cfg_overlay=dict(file=str(dst)),
        num_classes=0, img_size=32,
    ).eval()  # fmt: skip
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_features(x), encoders["student"].forward_full(x), atol=ATOL, rtol=0
        )
