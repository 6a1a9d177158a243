"""Frozen-feature evaluation: k-NN, linear probe, collapse indicators (hand-made inputs),
the ``LUTKNNMonitorHook`` in a training run and the evaluation / comparison tools end to end."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from utils import load_checkpoint, run_tool, run_train

from lut_plugin.evaluation import (
    effective_rank,
    evaluate_features,
    extract_features,
    knn_predict_labels,
    knn_top1,
    linear_probe_top1,
    pool_tokens,
    std_of_l2_normalized,
)

TOY_CFG = ROOT / "configs" / "mmpretrain" / "lut_vit-tiny_toy_cpu.py"


def _clusters(num_classes: int, per_class: int, dim: int = 8, noise: float = 0.05, seed: int = 0):
    """Features near one orthogonal direction per class; labels balanced."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    centres = torch.eye(dim)[:num_classes] * 3
    feats = centres[labels] + noise * torch.randn(len(labels), dim, generator=g)
    return feats, labels


# ------------------------------------------------------------------------------ k-NN


def test_knn_separable_classes_are_classified_perfectly():
    bank, bank_y = _clusters(4, 10, seed=0)
    query, query_y = _clusters(4, 5, seed=1)
    assert knn_top1(bank, bank_y, query, query_y, num_classes=4) == 100.0
    # a bank smaller than k: k is clipped, still perfect
    assert knn_top1(bank[::5], bank_y[::5], query, query_y, k=20) == 100.0


def test_knn_constant_feature_gives_chance_level():
    num_classes = 5
    bank_y = torch.arange(num_classes).repeat(8)
    query_y = torch.arange(num_classes).repeat(4)  # balanced queries
    bank, query = torch.ones(len(bank_y), 6), torch.ones(len(query_y), 6)
    # every query gets the same neighbours, hence the same prediction: exactly 1 / C correct
    assert knn_top1(bank, bank_y, query, query_y, num_classes) == pytest.approx(100 / num_classes)


def test_knn_votes_are_weighted_by_exp_cos_over_temperature():
    # One neighbour of class 0 at cos 1, two of class 1 at cos 0.8 (k = 3).
    query = torch.tensor([[1.0, 0.0]])
    c = 0.8
    bank = torch.tensor([[1.0, 0.0], [c, math.sqrt(1 - c * c)], [c, -math.sqrt(1 - c * c)]])
    bank_y = torch.tensor([0, 1, 1])
    # T = 0.07: exp(1/0.07) = 1.6e6 > 2 exp(0.8/0.07) = 1.8e5 -> class 0 despite the majority
    assert knn_predict_labels(bank, bank_y, query, 2, k=3, temperature=0.07).tolist() == [0]
    # T = 1: e = 2.72 < 2 e^0.8 = 4.45 -> the majority wins
    assert knn_predict_labels(bank, bank_y, query, 2, k=3, temperature=1.0).tolist() == [1]
    # cosine: the scale of a feature does not matter
    assert knn_predict_labels(bank * 7, bank_y, query * 0.1, 2, k=3).tolist() == [0]


def test_knn_rejects_bad_input():
    bank, bank_y = _clusters(2, 3)
    with pytest.raises(ValueError, match="labels must be"):
        knn_top1(bank, bank_y[:-1], bank, bank_y)
    with pytest.raises(ValueError, match="-d"):
        knn_top1(bank, bank_y, bank[:, :3], bank_y)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        knn_predict_labels(bank, bank_y + 5, bank, num_classes=2)


# ----------------------------------------------------------------------- linear probe


def test_linear_probe_separates_separable_classes():
    train, train_y = _clusters(4, 30, noise=0.3, seed=0)
    val, val_y = _clusters(4, 10, noise=0.3, seed=1)
    assert linear_probe_top1(train, train_y, val, val_y, epochs=30) == 100.0


def test_linear_probe_constant_feature_gives_chance_level():
    num_classes = 4
    train_y = torch.arange(num_classes).repeat(10)
    val_y = torch.arange(num_classes).repeat(5)
    acc = linear_probe_top1(
        torch.ones(len(train_y), 3), train_y, torch.ones(len(val_y), 3), val_y, epochs=5
    )
    assert acc == pytest.approx(100 / num_classes)


def test_linear_probe_is_seeded_and_leaves_the_global_rng_alone():
    train, train_y = _clusters(3, 20, noise=2.0, seed=0)
    val, val_y = _clusters(3, 20, noise=2.0, seed=1)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = linear_probe_top1(train, train_y, val, val_y, epochs=3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = linear_probe_top1(train, train_y, val, val_y, epochs=3, seed=5)
    assert a == b


# ----------------------------------------------------------------- collapse indicators


def test_effective_rank_hand_computed():
    # Centred rows along two axes with amplitudes a, b: singular values sqrt(2) a, sqrt(2) b.
    def feats(a, b):
        return torch.tensor([[a, 0.0], [-a, 0.0], [0.0, b], [0.0, -b]])

    assert effective_rank(feats(1.0, 1.0)) == pytest.approx(2.0)
    p = torch.tensor([0.25, 0.75])
    assert effective_rank(feats(1.0, 3.0)) == pytest.approx(math.exp(-(p * p.log()).sum()))
    # A shift does not matter (features are centred); one direction of variation: rank 1.
    assert effective_rank(feats(1.0, 3.0) + 5) == pytest.approx(effective_rank(feats(1.0, 3.0)))
    line = torch.arange(6.0)[:, None] * torch.tensor([[1.0, 2.0, -1.0]])
    assert effective_rank(line) == pytest.approx(1.0)
    assert effective_rank(torch.ones(5, 4)) == 1.0  # identical samples: complete collapse


def test_std_of_l2_normalized_hand_computed():
    # [1, 0] and [0, 1]: each dimension takes the values 1 and 0, std (unbiased) = 1/sqrt(2).
    assert std_of_l2_normalized(torch.tensor([[3.0, 0.0], [0.0, 0.5]])) == pytest.approx(
        1 / math.sqrt(2)
    )
    assert std_of_l2_normalized(torch.ones(4, 3) * torch.tensor([1.0, 2.0, 3.0])) == 0.0
    with pytest.raises(ValueError, match="num_samples >= 2"):
        std_of_l2_normalized(torch.ones(1, 3))


# ------------------------------------------------------------------ features / summary


def test_pool_tokens_and_extract_features():
    tokens = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    pooled = pool_tokens(tokens)
    assert torch.equal(pooled["cls"], torch.tensor([[0.0, 1.0], [6.0, 7.0]]))
    assert torch.equal(pooled["mean"], torch.tensor([[3.0, 4.0], [9.0, 10.0]]))
    with pytest.raises(ValueError, match="cls token first"):
        pool_tokens(torch.ones(2, 1, 4))
    batches = [(tokens, torch.tensor([1, 0])), (tokens + 100, torch.tensor([2, 2]))]
    feats, labels = extract_features(lambda x: x, batches)
    assert labels.tolist() == [1, 0, 2, 2]
    assert torch.equal(feats["cls"][2], torch.tensor([100.0, 101.0]))
    with pytest.raises(ValueError, match="no labelled images"):
        extract_features(lambda x: x, [])


def test_evaluate_features_reports_every_metric_per_pooling():
    train, train_y = _clusters(3, 20, seed=0)
    val, val_y = _clusters(3, 10, seed=1)
    out = evaluate_features(
        {"mean": train, "cls": torch.ones_like(train)},
        train_y,
        {"mean": val, "cls": torch.ones_like(val)},
        val_y,
        probe_epochs=20,
    )
    assert out["mean"]["knn_top1"] == 100.0 and out["mean"]["linear_top1"] == 100.0
    assert out["cls"]["knn_top1"] == pytest.approx(100 / 3)
    assert out["cls"]["effective_rank"] == 1.0 and out["cls"]["std_l2"] == 0.0
    assert 2.5 < out["mean"]["effective_rank"] <= 3.5 and out["mean"]["dim"] == 8
    assert (
        "linear_top1"
        not in evaluate_features({"mean": train}, train_y, {"mean": val}, val_y, probe_epochs=0)[
            "mean"
        ]
    )


# ---------------------------------------------------------- training-time monitor, tools


def _tiny_run_config(tmp_path, name: str, monitor: bool) -> str:
    """The toy LUT config on 20 + 10 images, 2 epochs of 3 iterations, as a file."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(TOY_CFG))
    cfg.train_dataloader.update(batch_size=8, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path / "toy"), num_train=20, num_val=10)
    cfg.train_cfg.max_epochs = 2
    cfg.default_hooks.logger.interval = 1
    hooks = [h for h in cfg.custom_hooks if h.type != "LUTKNNMonitorHook"]
    if monitor:
        hooks.append(dict(type="LUTKNNMonitorHook", interval=1, encoders=("student", "teacher")))
    cfg.custom_hooks = hooks
    path = tmp_path / f"{name}.py"
    cfg.dump(str(path))
    return str(path)


def test_knn_monitor_logs_knn_top1_and_leaves_training_unchanged(tmp_path):
    with_monitor = run_train(_tiny_run_config(tmp_path, "monitor", True), tmp_path / "a").stdout
    run_train(_tiny_run_config(tmp_path, "plain", False), tmp_path / "b")

    train_lines = [line for line in with_monitor.splitlines() if "Epoch(train)" in line]
    assert train_lines and all(
        "knn_top1_mean:" in line and "knn_top1_cls:" in line and "loss_mim:" in line
        for line in train_lines
    )
    for epoch in (0, 1, 2):
        assert f"Epoch(knn) [{epoch}]" in with_monitor
    (scalars,) = (tmp_path / "a").glob("*/vis_data/scalars.json")
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    monitor = [r for r in rows if "loss" not in r and "knn_top1_mean" in r]
    assert [r["epoch"] for r in monitor] == [0, 1, 2]
    for row in monitor:
        for key in ("knn_top1_cls", "knn_top1_mean_teacher", "erank_mean", "erank_cls_teacher"):
            assert key in row
        assert 0.0 <= row["knn_top1_mean"] <= 100.0 and 1.0 <= row["erank_mean"] <= 10.0
    assert all("knn_top1_mean" in r for r in rows if "loss" in r)  # beside the losses
    # The monitor runs without gradients and restores the random state: same weights.
    a = load_checkpoint(tmp_path / "a" / "epoch_2.pth")["state_dict"]
    b = load_checkpoint(tmp_path / "b" / "epoch_2.pth")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_knn_monitor_rejects_bad_settings():
    from lut_plugin.mmpretrain.engine.hooks import LUTKNNMonitorHook

    with pytest.raises(ValueError, match="interval"):
        LUTKNNMonitorHook(interval=0)
    with pytest.raises(ValueError, match="encoders"):
        LUTKNNMonitorHook(encoders=("ema",))


def test_evaluate_features_tool_on_a_random_encoder(tmp_path):
    from mmengine.config import Config

    cfg = Config.fromfile(str(TOY_CFG))
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path / "toy"), num_train=30, num_val=10)
    config = tmp_path / "cfg.py"
    cfg.dump(str(config))
    out = tmp_path / "features.json"
    args = ["--model", "random", config, "random", "--pixels", "--probe-epochs", "3"]
    proc = run_tool("analysis/evaluate_features.py", *args, "--out", out)
    assert "| random | random init | mean |" in proc.stdout
    record = json.loads(out.read_text())
    rows = {(r["label"], r["pooling"]): r for r in record["results"]}
    assert set(rows) == {("random", "cls"), ("random", "mean"), ("pixels", "pixels")}
    assert rows[("pixels", "pixels")]["dim"] == 3 * 32 * 32
    for row in rows.values():
        assert 0 <= row["knn_top1"] <= 100 and 0 <= row["linear_top1"] <= 100
    bad = run_tool("analysis/evaluate_features.py", "--model", "x", config, check=False)
    assert bad.returncode != 0 and "LABEL CONFIG CHECKPOINT" in bad.stdout


def test_held_out_test_split_is_a_second_generated_toy_set(tmp_path):
    from lut_plugin.mmpretrain.evaluation import build_labelled_dataset, split_dataset_cfgs

    cfg = Config.fromfile(str(TOY_CFG))
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path / "toy"), num_train=12, num_val=6)
    train, test = split_dataset_cfgs(cfg, test_images=8)
    assert train["split"] == "train" and train["data_root"] == str(tmp_path / "toy")
    # the generator's val split of a second dataset: next seed, its own folder
    assert test == dict(train, data_root=str(tmp_path / "toy_test"), split="val", num_train=10,
                        num_val=8, seed=1)  # fmt: skip
    train_ds, test_ds = (build_labelled_dataset(dict(c, pipeline=[])) for c in (train, test))
    assert (len(train_ds), len(test_ds)) == (12, 8)

    def md5s(ds):
        paths = [ds.get_data_info(i)["img_path"] for i in range(len(ds))]
        return {hashlib.md5(open(p, "rb").read()).hexdigest() for p in paths}

    assert not md5s(train_ds) & md5s(test_ds)  # no image of the test set is a training image
    with pytest.raises(ValueError, match="not an image folder"):
        split_dataset_cfgs(cfg, tmp_path / "toy", test_images=8)
    with pytest.raises(ValueError, match="test_images must be >= 1, got 0"):
        split_dataset_cfgs(cfg, test_images=0)


def test_compare_lut_mae_end_to_end_on_a_minimal_budget(tmp_path):
    out = tmp_path / "results"
    args = [
        "--out", out, "--work-root", tmp_path / "runs", "--seeds", "0", "1", "--epochs", "1",
        "--num-train", "16", "--num-val", "10", "--batch-size", "8", "--test-images", "12",
        "--data-root", tmp_path / "toy", "--probe-epochs", "2", "--jobs", "2",
        "--cfg-options", "train_dataloader.num_workers=0",
        "train_dataloader.persistent_workers=False", "--lut-cfg-options", "model.w_bc=0.1",
    ]  # fmt: skip
    run_tool("analysis/compare_lut_mae.py", *args, timeout=900)
    lut_cfg = Config.fromfile(str(tmp_path / "runs" / "lut_seed1" / "run_config.py"))
    mae_cfg = Config.fromfile(str(tmp_path / "runs" / "mae_seed1" / "run_config.py"))
    assert lut_cfg.model.w_bc == 0.1 and "w_bc" not in mae_cfg.model
    assert lut_cfg.train_dataloader.num_workers == mae_cfg.train_dataloader.num_workers == 0
    for name in ("results.md", "results.json", "knn_over_epochs.png", "losses.png",
                 "effective_rank.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    record = json.loads((out / "results.json").read_text())
    assert record["seeds"] == [0, 1] and record["epochs"] == 1
    assert record["test_images"] == 12 and record["data"] == {"num_train": 16, "num_val": 12}
    table = {(r["encoder"], r["pooling"]): r for r in record["table"]}
    for encoder in ("LUT student", "LUT teacher", "MAE", "random init"):
        for pooling in ("cls", "mean"):
            row = table[(encoder, pooling)]
            assert row["seeds"] == [0, 1]
            for metric in ("knn_top1", "linear_top1"):
                a, b = row[metric]["values"]  # sample s.d. of two values: |a - b| / sqrt(2)
                assert row[metric]["mean"] == pytest.approx((a + b) / 2)
                assert row[metric]["sd"] == pytest.approx(abs(a - b) / math.sqrt(2))
    assert table[("raw pixels", "pixels")]["seeds"] == [None]
    runs = {(r["method"], r["seed"]): r for r in record["runs"]}
    assert set(runs) == {("LUT", 0), ("LUT", 1), ("MAE", 0), ("MAE", 1)}
    for run in runs.values():
        assert run["seconds"] > 0 and [m["epoch"] for m in run["monitor"]] == [0, 1]
    report = (out / "results.md").read_text()
    assert "| LUT student | mean |" in report and "compare_lut_mae.py" in report
    assert "12 held-out test images" in report
    # The same command again stops before training over those runs' checkpoints.
    import importlib.util

    path = ROOT / "tools" / "analysis" / "compare_lut_mae.py"
    spec = importlib.util.spec_from_file_location("_compare_lut_mae", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit, match="earlier comparison; pass another --work-root"):
        tool.main([str(a) for a in args])
