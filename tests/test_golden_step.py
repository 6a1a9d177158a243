"""One LUT step reproduces the reference implementation's numbers exactly.

``tests/data/golden/lut_step_tiny.pt`` holds weights, inputs, noise and outputs of one
step computed by a reference that matches the authors' code to the last float.
"""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_lut, tiny_lut_cfg

from lut_plugin.convert import convert_timm_lut

ATOL = 1e-5


@pytest.fixture(scope="module")
def step(golden):
    torch.manual_seed(0)
    model = build_tiny_lut()
    state = convert_timm_lut(golden["student"], golden["teacher"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Only the data preprocessor's own buffers may be absent from the reference weights.
    assert [k for k in missing if not k.startswith("data_preprocessor.")] == []
    assert unexpected == []
    model.train()
    out = model.forward_lut(golden["x1"], golden["x2"], noise=golden["noise"])
    return model, out


def test_config_matches(golden, step):
    """The reference's architecture is the one tiny_lut_cfg() builds (weights alone could load
    into a model that differs in e.g. norm epsilons, activations or the mask ratio)."""
    ref, model = golden["config"], step[0]
    ours = tiny_lut_cfg()
    backbone, neck, head = ours["backbone"], ours["neck"], ours["head"]
    assert (ref["img_size"], ref["patch_size"]) == (backbone["img_size"], backbone["patch_size"])
    arch = backbone["arch"]
    assert (ref["embed_dim"], ref["depth"], ref["num_heads"]) == (
        arch["embed_dims"], arch["num_layers"], arch["num_heads"]
    )  # fmt: skip
    assert (ref["decoder_embed_dim"], ref["decoder_depth"], ref["decoder_num_heads"]) == (
        neck["decoder_embed_dim"], neck["decoder_depth"], neck["decoder_num_heads"]
    )  # fmt: skip
    assert ref["mask_ratio"] == backbone["mask_ratio"] == model.backbone.mask_ratio
    assert ref["norm_pix_loss"] == head["norm_pix"]
    assert ref["projector_hidden"] == ours["projector"]["hid_channels"]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and {m.eps for m in norms} == {ref["ln_eps"]}
    for part, depth in (
        (model.projector, ref["projector_depth"]),
        (model.predictor, ref["predictor_depth"]),
    ):
        kinds = [type(m).__name__ for m in part.modules() if not list(m.children())]
        assert kinds.count("Linear") == depth
        assert (
            kinds.count({"BN": "BatchNorm1d"}[ref["head_norm"]])
            == kinds.count(ref["head_act"])
            == depth - 1
        )
        assert {m.eps for m in part.modules() if isinstance(m, torch.nn.BatchNorm1d)} == {
            ref["bn_eps"]
        }


@pytest.mark.parametrize("name", ["mask1", "mask2"])
def test_masks(golden, step, name):
    _, out = step
    mask = getattr(out.masks, name)
    assert torch.equal(mask, golden["expected"][name].to(mask.dtype))


@pytest.mark.parametrize("name", ["p1", "p2", "t1", "t2"])
def test_features(golden, step, name):
    _, out = step
    torch.testing.assert_close(getattr(out, name), golden["expected"][name], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["loss_mim", "loss_bc"])
def test_losses(golden, step, name):
    _, out = step
    torch.testing.assert_close(getattr(out, name), golden["expected"][name], atol=ATOL, rtol=0)


def test_weighted_loss_dict(golden):
    """``loss()`` returns the same terms, multiplied by ``w_mim`` and ``w_bc``."""
    model = build_tiny_lut(w_mim=2.0, w_bc=0.5)
    model.load_state_dict(convert_timm_lut(golden["student"], golden["teacher"]), strict=False)
    model.train()
    losses = model.loss([golden["x1"], golden["x2"]], noise=golden["noise"])
    exp = golden["expected"]
    torch.testing.assert_close(losses["loss_mim"], 2.0 * exp["loss_mim"], atol=2 * ATOL, rtol=0)
    torch.testing.assert_close(losses["loss_bc"], 0.5 * exp["loss_bc"], atol=ATOL, rtol=0)


def test_teacher_stays_in_eval_mode(step):
    model, _ = step
    model.train()
    assert model.training and model.projector.training
    assert not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())


def test_convert_tool_imports_reference_weights(golden, tmp_path):
    """``tools/convert_checkpoint.py --from timm`` (its ``main``, in-process) gives a checkpoint
    that LUT loads strictly."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("convert", ROOT / "tools/convert_checkpoint.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src = tmp_path / "reference.pth"
    torch.save({"model": golden["student"], "model_ema": golden["teacher"]}, src)
    dst = tmp_path / "lut.pth"
    tool.main(["--from", "timm", str(src), str(dst), "--teacher-key", "model_ema"])
    state = torch.load(dst, weights_only=True)["state_dict"]
    model = build_tiny_lut()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert [k for k in missing if not k.startswith("data_preprocessor.")] == []
    assert unexpected == []
    model.train()
    out = model.forward_lut(golden["x1"], golden["x2"], noise=golden["noise"])
    torch.testing.assert_close(out.loss_bc, golden["expected"]["loss_bc"], atol=ATOL, rtol=0)
