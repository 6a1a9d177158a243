"""The paper's analyses (attention maps, attention distance) on hand-made inputs, and the
analysis tools (``encoder_analysis.py``, ``benchmark_lut_vs_mae.py``) in-process on tiny data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import ROOT, build_tiny_lut
from utils import load_tool, write_tiny_images

from lut_plugin.evaluation.attention import capture_attention, mean_attention_distance

TOY_CFG = ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_toy_cpu.py"


def test_attention_distance_by_hand():
    # 1x2 grid of 16-px patches plus a cls token, dropped and renormalised away: every patch
    # query attends half to itself (0 px), half to the other patch (16 px) -> 8 px.
    attn = torch.tensor([[0.2, 0.4, 0.4], [0.0, 0.5, 0.5], [0.5, 0.25, 0.25]]).view(1, 1, 3, 3)
    assert mean_attention_distance(attn, (1, 2), 16).tolist() == [8.0]
    assert mean_attention_distance(torch.eye(3).view(1, 1, 3, 3), (1, 2), 16).tolist() == [0.0]
    # 2x2 grid, every query attends only to the diagonally opposite patch: sqrt(2) * 16 px
    opposite = torch.zeros(1, 1, 5, 5)
    for q, k in [(1, 4), (2, 3), (3, 2), (4, 1)]:
        opposite[0, 0, q, k] = 1.0
    torch.testing.assert_close(
        mean_attention_distance(opposite, (2, 2), 16), torch.tensor([16 * math.sqrt(2)])
    )
    with pytest.raises(ValueError, match="grid"):
        mean_attention_distance(attn, (2, 2), 16)


def test_captured_attention_reproduces_the_blocks_output():
    encoder = build_tiny_lut().backbone
    encoder.eval()
    attn, seen = encoder.layers[-1].attn, {}
    hooks = [attn.register_forward_pre_hook(lambda m, a: seen.update(x=a[0])),
             attn.register_forward_hook(lambda m, a, out: seen.update(out=out))]  # fmt: skip
    with torch.no_grad(), capture_attention(encoder) as maps:
        encoder.forward_full(torch.randn(2, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert len(maps) == 2 and maps[-1].shape == (2, 4, 65, 65)
    torch.testing.assert_close(maps[-1].sum(-1), torch.ones(2, 4, 65))
    v = attn.qkv(seen["x"]).reshape(2, 65, 3, 4, 16).permute(2, 0, 3, 1, 4)[2]
    out = attn.proj((maps[-1] @ v).transpose(1, 2).reshape(2, 65, 64))
    torch.testing.assert_close(out, seen["out"], atol=1e-5, rtol=1e-5)
    assert not attn._forward_pre_hooks  # the capture's hooks are gone


def test_encoder_analysis_draws_every_figure(tmp_path, monkeypatch):
    """Each model's images are normalised with its own config's mean and std."""
    images = write_tiny_images(tmp_path / "images", n=4)
    out, other = tmp_path / "analysis", tmp_path / "other_norm.py"
    norm = "data_preprocessor = dict(mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 8.0])"
    other.write_text(f"_base_ = [{str(TOY_CFG)!r}]\n{norm}\n")
    tool, inputs = load_tool("analysis/encoder_analysis"), []
    analyse, load_images, reads = tool.analyse, tool.load_images, []
    monkeypatch.setattr(tool, "analyse", lambda enc, x: inputs.append(x) or analyse(enc, x))
    monkeypatch.setattr(tool, "load_images", lambda *a: reads.append(a) or load_images(*a))
    tool.main(["--model", "A", str(TOY_CFG), "random", "--model", "B", str(TOY_CFG), "random",
               "--model", "C", str(other), "random", "--images", str(images),
               "--out", str(out)])  # fmt: skip
    for name in ("attention_maps.png", "attention_distance.png", "spectrum.png"):
        assert (out / name).stat().st_size > 1000, name
    assert len(reads) == 1  # three models of one input size: the images are read once
    raw = torch.from_numpy(tool.load_images(images, 32, 256)).permute(0, 3, 1, 2).double()
    for x, mean, std in ((inputs[0], (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
                         (inputs[2], (10.0, 20.0, 30.0), (2.0, 4.0, 8.0))):  # fmt: skip
        mean, std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        torch.testing.assert_close(x.double(), (raw - mean) / std, rtol=1e-6, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["A"] == summary["B"]  # the same seeded initialisation
    assert len(summary["A"]["mean_attention_distance_per_layer"]) == 4  # the toy encoder
    assert 1.0 <= summary["A"]["effective_rank"] <= 4.0  # 4 images, centred: rank <= 3


@pytest.fixture
def bench():
    return load_tool("analysis/benchmark_lut_vs_mae")


def test_benchmark_leaves_only_the_chosen_attention_backend(bench):
    def enabled() -> dict:
        return {b: getattr(torch.backends.cuda, f"{b}_sdp_enabled")() for b in bench.SDPA_BACKENDS}

    before = enabled()
    try:
        bench.use_sdpa_backend("flash")
        assert enabled() == {"flash": True, "mem_efficient": False, "cudnn": False, "math": False}
        bench.use_sdpa_backend(None)  # torch's choice: nothing changes
        assert enabled()["flash"] and not enabled()["math"]
    finally:
        for backend, on in before.items():
            getattr(torch.backends.cuda, f"enable_{backend}_sdp")(on)


def test_flop_count_of_the_fused_teacher_gelu_is_the_addmm_it_replaces(bench):
    # On CUDA the fused teacher's MLP layer is torch._addmm_activation, which torch's counter
    # does not know: uncounted, --fuse-teacher-gelu was 22.3 GFLOP per image short on a GPU.
    from torch.utils.flop_counter import FlopCounterMode

    bias, x, w = torch.randn(5), torch.randn(3, 4), torch.randn(4, 5)
    with FlopCounterMode(display=False, custom_mapping=bench.extra_flop_formulas()) as counter:
        torch._addmm_activation(bias, x, w, use_gelu=True)
    assert counter.get_total_flops() == 2 * 3 * 4 * 5  # by hand: 2 * M * K * N
    with FlopCounterMode(display=False) as plain:
        torch._addmm_activation(bias, x, w, use_gelu=True)
    assert plain.get_total_flops() == 0  # what torch alone counts


def test_benchmark_on_the_tiny_config_writes_every_figure(bench, tmp_path, monkeypatch, capsys):
    """Step and data parts, the workers in this process (timings measured, never asserted)."""

    def in_process(args, *extra):
        bench.main([*args.argv, *extra])
        return json.loads(capsys.readouterr().out.splitlines()[-1])

    monkeypatch.setattr(bench, "run_worker", in_process)
    threads, np_state = torch.get_num_threads(), np.random.get_state()
    np.random.seed(0)  # view 2's draws (with this seed the colour jitter runs)
    out = tmp_path / "bench"
    try:
        bench.main(["--sizes", "tiny", "--batch", "2", "--steps", "1", "--warmup", "1",
                    "--rounds", "1", "--peak-tflops", "1.5", "--data-images", "3",
                    "--img-size", "32", "--workers", "0", "--loader-batch", "2",
                    "--loader-batches", "1", "--out", str(out), "--compile",
                    "--compile-backend", "eager", "--compile-scope", "blocks",  # dynamo only
                    "--fuse-teacher-gelu"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
        np.random.set_state(np_state)
    result = json.loads((out / "lut_vs_mae.json").read_text())
    assert result["meta"]["options"]["compile_scope"] == "blocks"
    (row,) = result["rows"]
    for model in ("mae", "lut"):
        for key in ("params_m", "flops_per_image", "first_loss", "step_s", "images_per_s",
                    "tflops_per_s", "peak_mib", "compiled_step_s",
                    "compiled_peak_mib"):  # fmt: skip
            assert math.isfinite(row[f"{model}_{key}"]) and row[f"{model}_{key}"] > 0, key
        # On a CPU the peak resident memory may already have been reached before the steps
        assert 0 <= row[f"{model}_step_mib"] <= row[f"{model}_peak_mib"]
        assert row[f"{model}_peak_fraction"] == pytest.approx(row[f"{model}_tflops_per_s"] / 1.5)
    # LUT adds a second view, the teacher's passes and the heads: 2.89 x MAE's FLOPs (results)
    assert row["lut_flops_per_image"] / row["mae_flops_per_image"] == pytest.approx(2.89, abs=0.005)
    pipelines = result["data"]["pipelines"]
    assert set(pipelines) == {"mae", "lut", "lut_device"}
    for entry in pipelines.values():
        assert entry["images_per_s"] > 0 and entry["loader_images_per_s"] > 0
        assert entry["ms_per_image"]["LoadImageFromFile"] > 0
    lut, device = pipelines["lut"]["ms_per_image"], pipelines["lut_device"]["ms_per_image"]
    assert {"LUTResizeEdge", "LUTPaddedRandomCrop", "RandomFlip", "PackInputs"} <= set(lut)
    assert any(k.startswith("photometric.adjust_") for k in lut)  # called by distort()
    assert "LUTPhotometricParams" in device and not any("photometric." in k for k in device)
    assert "RandomResizedCrop" in pipelines["mae"]["ms_per_image"]
    report = (out / "lut_vs_mae.md").read_text()
    assert "| tiny, batch 2 | MAE | LUT | LUT/MAE |" in report and "| images_per_s |" in report
