"""Frozen-feature evaluation: k-NN, linear probe, collapse indicators on hand-made inputs, the
``LUTKNNMonitorHook`` in a training run, and the evaluation / comparison tools in-process."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from mmengine.config import Config
from utils import TOY_CFG, load_checkpoint, load_tool, train_here

from lut_plugin.evaluation import LUTKNNMonitorHook
from lut_plugin.evaluation.features import build_dataset, encoder_features
from lut_plugin.evaluation.metrics import (
    effective_rank,
    evaluate_features,
    knn_top1,
    linear_probe_top1,
    singular_value_spectrum,
    std_of_l2_normalized,
)


def _clusters(num_classes: int, per_class: int, dim: int = 8, noise: float = 0.05, seed: int = 0):
    """Features near one orthogonal direction per class; labels balanced."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    feats = torch.eye(dim)[labels] * 3 + noise * torch.randn(len(labels), dim, generator=g)
    return feats, labels


def test_knn_by_hand():
    bank, bank_y = _clusters(4, 10, seed=0)
    query, query_y = _clusters(4, 5, seed=1)
    assert knn_top1(bank, bank_y, query, query_y, num_classes=4) == 100.0
    assert knn_top1(bank[::5], bank_y[::5], query, query_y, k=20) == 100.0  # k clipped to 8
    # Identical features: every query gets the same vote, so exactly 1 / C of them are right.
    labels = torch.arange(5).repeat(8)
    assert knn_top1(torch.ones(40, 6), labels, torch.ones(40, 6), labels) == pytest.approx(20.0)
    # One neighbour of class 0 at cos 1, two of class 1 at cos 0.8 (k = 3):
    # T = 0.07: exp(1 / 0.07) = 1.6e6 > 2 exp(0.8 / 0.07) = 1.8e5, class 0 despite the majority;
    # T = 1: e = 2.72 < 2 e^0.8 = 4.45, the majority wins. Cosine: scales do not matter.
    s = math.sqrt(1 - 0.8**2)
    bank, bank_y = torch.tensor([[1.0, 0.0], [0.8, s], [0.8, -s]]), torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.0]])
    assert knn_top1(bank, bank_y, query, torch.tensor([0]), 2, k=3, temperature=0.07) == 100
    assert knn_top1(bank, bank_y, query, torch.tensor([1]), 2, k=3, temperature=1.0) == 100
    assert knn_top1(bank * 7, bank_y, query * 0.1, torch.tensor([0]), 2, k=3) == 100


def test_linear_probe_separates_classes_is_seeded_and_leaves_the_global_rng_alone():
    train, train_y = _clusters(4, 30, noise=0.3, seed=0)
    val, val_y = _clusters(4, 10, noise=0.3, seed=1)
    assert linear_probe_top1(train, train_y, val, val_y, epochs=30) == 100.0
    y = torch.arange(4).repeat(10)  # a constant feature: chance level
    assert linear_probe_top1(torch.ones(40, 3), y, torch.ones(40, 3), y, epochs=5) == 25.0
    noisy, noisy_y = _clusters(3, 20, noise=2.0, seed=0)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = linear_probe_top1(noisy, noisy_y, val, val_y % 3, epochs=3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert a == linear_probe_top1(noisy, noisy_y, val, val_y % 3, epochs=3, seed=5)


def test_spectrum_effective_rank_and_std_by_hand():
    def feats(a, b):  # centred rows along two axes: singular values sqrt(2) a, sqrt(2) b
        return torch.tensor([[a, 0.0], [-a, 0.0], [0.0, b], [0.0, -b]])

    values = singular_value_spectrum(feats(3.0, 2.0), normalize=False)
    torch.testing.assert_close(values, torch.tensor([18**0.5, 8**0.5], dtype=torch.float64))
    torch.testing.assert_close(singular_value_spectrum(feats(3.0, 2.0)), values / 18**0.5)
    assert effective_rank(feats(1.0, 1.0)) == pytest.approx(2.0)
    p = torch.tensor([0.25, 0.75])  # singular values in ratio 1 : 3
    assert effective_rank(feats(1.0, 3.0)) == pytest.approx(math.exp(-(p * p.log()).sum()))
    assert effective_rank(feats(1.0, 3.0) + 5) == pytest.approx(effective_rank(feats(1.0, 3.0)))
    assert effective_rank(torch.arange(6.0)[:, None] * torch.tensor([[1.0, 2.0, -1.0]])) == (
        pytest.approx(1.0)
    )  # one direction of variation
    assert effective_rank(torch.ones(5, 4)) == 1.0  # identical samples: complete collapse
    # [1, 0] and [0, 1] after normalising: each dimension takes 1 and 0, std = 1 / sqrt(2)
    assert std_of_l2_normalized(torch.tensor([[3.0, 0.0], [0.0, 0.5]])) == pytest.approx(0.5**0.5)
    assert std_of_l2_normalized(torch.ones(4, 3) * torch.tensor([1.0, 2.0, 3.0])) == 0.0


def test_features_pool_the_tokens_and_evaluate_every_metric_per_pooling():
    class Encoder(torch.nn.Module):
        def forward_full(self, x):
            return x

    tokens = torch.arange(12.0).reshape(2, 3, 2)
    batches = [(tokens, torch.tensor([1, 0])), (tokens + 100, torch.tensor([2, 2]))]
    encoder = Encoder().train()
    feats, labels = encoder_features(encoder, batches)
    assert encoder.training and labels.tolist() == [1, 0, 2, 2]  # its mode is given back
    torch.testing.assert_close(feats["cls"][:2], torch.tensor([[0.0, 1.0], [6.0, 7.0]]))
    torch.testing.assert_close(feats["mean"][:2], torch.tensor([[3.0, 4.0], [9.0, 10.0]]))
    assert encoder_features(None, batches)[0]["pixels"].shape == (4, 6)

    train, train_y = _clusters(3, 20, seed=0)
    val, val_y = _clusters(3, 10, seed=1)
    train_feats = {"mean": train, "cls": torch.ones_like(train)}
    out = evaluate_features(train_feats, train_y, {"mean": val, "cls": torch.ones_like(val)}, val_y,
                            probe_epochs=20)  # fmt: skip
    assert out["mean"]["knn_top1"] == 100.0 and out["mean"]["linear_top1"] == 100.0
    assert out["cls"]["knn_top1"] == pytest.approx(100 / 3)
    assert out["cls"]["effective_rank"] == 1.0 and out["cls"]["std_l2"] == 0.0
    assert 2.5 < out["mean"]["effective_rank"] <= 3.5 and out["mean"]["dim"] == 8
    no_probe = evaluate_features({"m": train}, train_y, {"m": val}, val_y, probe_epochs=0)
    assert "linear_top1" not in no_probe["m"]


def _toy_config(tmp_path, name: str, monitor: bool, num_train: int = 20) -> str:
    """The toy LUT config on ``num_train`` + 10 images, 2 epochs of 3 iterations, as a file."""
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.train_dataloader.update(batch_size=8, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path / "toy"), num_train=num_train,
                                        num_val=10)  # fmt: skip
    cfg.train_cfg.max_epochs = 2
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != "LUTKNNMonitorHook"]
    if monitor:
        cfg.custom_hooks.append(dict(type="LUTKNNMonitorHook", encoders=("student", "teacher")))
    cfg.dump(str(tmp_path / f"{name}.py"))
    return str(tmp_path / f"{name}.py")


def test_knn_monitor_logs_knn_top1_and_leaves_training_unchanged(tmp_path):
    log = train_here(_toy_config(tmp_path, "monitor", True), tmp_path / "a")
    train_here(_toy_config(tmp_path, "plain", False), tmp_path / "b")
    train_lines = [line for line in log.splitlines() if "Epoch(train)" in line]
    assert train_lines and all("knn_top1_mean:" in line and "loss_mim:" in line
                               for line in train_lines)  # fmt: skip
    assert all(f"Epoch(knn) [{epoch}]" in log for epoch in (0, 1, 2))
    (scalars,) = (tmp_path / "a").glob("*/vis_data/scalars.json")
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    monitor = [r for r in rows if "loss" not in r and "knn_top1_mean" in r]
    assert [r["epoch"] for r in monitor] == [0, 1, 2]
    for row in monitor:
        assert {"knn_top1_cls", "knn_top1_mean_teacher", "erank_cls_teacher"} <= set(row)
        assert 0.0 <= row["knn_top1_mean"] <= 100.0 and 1.0 <= row["erank_mean"] <= 10.0
    # Without gradients and with the random state restored: the same weights.
    a = load_checkpoint(tmp_path / "a" / "epoch_2.pth")["state_dict"]
    b = load_checkpoint(tmp_path / "b" / "epoch_2.pth")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="interval"):
        LUTKNNMonitorHook(interval=0)
    with pytest.raises(ValueError, match="encoders"):
        LUTKNNMonitorHook(encoders=("ema",))


def test_evaluate_features_tool_and_the_held_out_test_split(tmp_path, capsys):
    tool = load_tool("analysis/evaluate_features")
    config = _toy_config(tmp_path, "cfg", False, num_train=30)
    out = tmp_path / "features.json"
    tool.main(["--model", "random", config, "random", "--pixels", "--probe-epochs", "3",
               "--out", str(out)])  # fmt: skip
    assert "| random | random init | mean |" in capsys.readouterr().out
    rows = {(r["label"], r["pooling"]): r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {("random", "cls"), ("random", "mean"), ("pixels", "pixels")}
    assert rows[("pixels", "pixels")]["dim"] == 3 * 32 * 32
    assert all(0 <= r["knn_top1"] <= 100 and 0 <= r["linear_top1"] <= 100 for r in rows.values())
    with pytest.raises(SystemExit):
        tool.main(["--model", "x", config])
    assert "LABEL CONFIG CHECKPOINT" in capsys.readouterr().err

    # --test-images: the val split of a second toy set (next seed, its own folder)
    train, test = tool.dataset_cfgs(config, test_images=8)
    assert train["split"] == "train" and train["data_root"] == str(tmp_path / "toy")
    assert test == dict(train, data_root=str(tmp_path / "toy_test"), split="val", num_train=10,
                        num_val=8, seed=1)  # fmt: skip
    train_set, test_set = (build_dataset(dict(c, pipeline=[])) for c in (train, test))
    assert (len(train_set), len(test_set)) == (30, 8)

    def md5s(ds):
        paths = [ds.get_data_info(i)["img_path"] for i in range(len(ds))]
        return {hashlib.md5(open(p, "rb").read()).hexdigest() for p in paths}

    assert not md5s(train_set) & md5s(test_set)  # no test image is a training image
    with pytest.raises(ValueError, match="not --data"):
        tool.dataset_cfgs(config, tmp_path / "toy", test_images=8)
    with pytest.raises(ValueError, match=">= 1"):
        tool.dataset_cfgs(config, test_images=0)


def test_compare_lut_mae_on_a_minimal_budget(tmp_path, monkeypatch):
    tool = load_tool("analysis/compare_lut_mae")
    # mean and sample s.d. over seeds, by hand: values 10 and 20 -> 15 +- 10 / sqrt(2)
    rows = [dict(encoder="LUT", pooling="cls", seed=s, knn_top1=v) for s, v in ((0, 10), (1, 20))]
    assert tool.summarise(rows) == [dict(encoder="LUT", pooling="cls", seeds=[0, 1], knn_top1=dict(
        mean=15.0, sd=pytest.approx(10 / math.sqrt(2)), values=[10, 20]))]  # fmt: skip

    def train_in_process(run, threads):  # what the subprocess runs, here
        train_here(run["config"], run["work_dir"])
        run["seconds"] = 1.0

    monkeypatch.setattr(tool, "train", train_in_process)
    out = tmp_path / "results"
    args = ["--out", out, "--work-root", tmp_path / "runs", "--seeds", "3", "--epochs", "1",
            "--num-train", "16", "--num-val", "10", "--batch-size", "8", "--test-images", "12",
            "--data-root", tmp_path / "toy", "--probe-epochs", "2", "--jobs", "1",
            "--cfg-options", "train_dataloader.num_workers=0",
            "train_dataloader.persistent_workers=False",
            "--lut-cfg-options", "model.w_bc=0.1"]  # fmt: skip
    tool.main([str(a) for a in args])
    lut_cfg = Config.fromfile(str(tmp_path / "runs" / "lut_seed3" / "run_config.py"))
    mae_cfg = Config.fromfile(str(tmp_path / "runs" / "mae_seed3" / "run_config.py"))
    assert lut_cfg.model.w_bc == 0.1 and "w_bc" not in mae_cfg.model
    assert lut_cfg.randomness.seed == 3 and lut_cfg.train_cfg.max_epochs == 1
    assert [s.type for s in lut_cfg.param_scheduler] == ["CosineAnnealingLR"]  # no warm-up left
    for name in ("results.md", "knn_over_epochs.png", "effective_rank.png"):
        assert (out / name).stat().st_size > 0, name
    record = json.loads((out / "results.json").read_text())
    assert record["seeds"] == [3] and record["epochs"] == 1 and record["test_images"] == 12
    assert record["data"] == {"num_train": 16, "num_val": 12}
    table = {(r["encoder"], r["pooling"]): r for r in record["table"]}
    assert set(table) == {(e, p) for e in ("LUT student", "LUT teacher", "MAE", "random init")
                          for p in ("cls", "mean")} | {("raw pixels", "pixels")}  # fmt: skip
    assert all(0 <= r["linear_top1"]["mean"] <= 100 for r in table.values())
    assert all([m["epoch"] for m in run["monitor"]] == [0, 1] for run in record["runs"])
    report = (out / "results.md").read_text()
    assert "| LUT student | mean |" in report and "12 held-out test images" in report
    # The same command again stops before training over those runs' checkpoints.
    with pytest.raises(SystemExit, match="earlier comparison; pass another --work-root"):
        tool.main([str(a) for a in args])
