"""The embedded procedural datasets: determinism, layout, labels, registered loaders."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

import lut_plugin.datasets  # noqa: F401  (registers LUTToyShapesDataset)
from lut_plugin.datasets.toy import (
    META_FILE,
    TOY_CLASSES,
    TOY_CLS_CLASSES,
    TOY_CLS_PATTERNS,
    TOY_PATTERNS,
    _rng,
    ensure_toy_dataset,
    render_classification_sample,
    render_segmentation_sample,
)

REPO = Path(__file__).resolve().parents[1]
K = len(TOY_CLASSES)  # segmentation classes
K_CLS = len(TOY_CLS_CLASSES)  # classification classes
SMALL_CLS = dict(image_size=32, num_train=14, num_val=7)
SMALL_ADE = dict(image_size=48, num_train=6, num_val=3)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------- generator


def test_classification_is_deterministic(tmp_path):
    a = ensure_toy_dataset(tmp_path / "a", "cls", seed=3, **SMALL_CLS)
    b = ensure_toy_dataset(tmp_path / "b", "cls", seed=3, **SMALL_CLS)
    c = ensure_toy_dataset(tmp_path / "c", "cls", seed=4, **SMALL_CLS)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) == 14 + 7 + 4  # images + meta/train.txt, meta/val.txt, classes, json
    assert da == db
    images = [k for k in da if k.endswith(".png")]
    assert sum(da[k] != dc[k] for k in images) == len(images)  # another seed: all differ


def test_ade_is_deterministic(tmp_path):
    a = ensure_toy_dataset(tmp_path / "a", "ade", **SMALL_ADE)
    b = ensure_toy_dataset(tmp_path / "b", "ade", **SMALL_ADE)
    assert _digest(a) == _digest(b)
    img1, lab1 = render_segmentation_sample(np.random.default_rng(5), 48)
    img2, lab2 = render_segmentation_sample(np.random.default_rng(5), 48)
    assert np.array_equal(img1, img2) and np.array_equal(lab1, lab2)


def test_renderers_draw_the_images_they_always_drew():
    """The pixels of the first images of both kinds, as the generator has drawn them since
    its current GENERATOR_VERSIONS (a changed renderer must bump its version)."""
    digest = hashlib.sha256()
    for i in range(20):
        digest.update(render_classification_sample(i % K_CLS, _rng(0, "cls", "train", i), 32))
    for i in range(12):
        img, label = render_segmentation_sample(_rng(0, "ade", "val", i), 48, 3)
        digest.update(img), digest.update(label)
    assert digest.hexdigest() == "7c8511e73634ed214191a48487efd574e6cbe7c12db36afd57dae223f1afb654"


def test_classification_layout_and_counts(tmp_path):
    root = ensure_toy_dataset(tmp_path / "cls", "cls", **SMALL_CLS)
    assert sorted(p.name for p in (root / "train").iterdir()) == list(TOY_CLS_CLASSES)
    assert (root / "classes.txt").read_text().split() == list(TOY_CLS_CLASSES)
    for split, count in (("train", 14), ("val", 7)):
        files = sorted((root / split).glob("*/*.png"))
        assert len(files) == count
        lines = (root / "meta" / f"{split}.txt").read_text().splitlines()
        assert len(lines) == count
        per_class = np.bincount([int(line.split()[1]) for line in lines], minlength=K_CLS)
        assert per_class.max() - per_class.min() <= 1  # balanced: class = index % K_CLS
        for line in lines:
            rel, label = line.split()
            assert 0 <= int(label) < K_CLS
            assert rel.split("/")[0] == TOY_CLS_CLASSES[int(label)]  # folder = class name
            img = Image.open(root / split / rel)
            assert img.mode == "RGB" and img.size == (32, 32)
    meta = json.loads((root / META_FILE).read_text())
    assert meta["kind"] == "cls" and meta["num_train"] == 14
    assert meta["classes"] == list(TOY_CLS_CLASSES) and meta["generator_version"] == 2


def test_classification_sample_shows_a_visible_shape():
    for label in range(K_CLS):
        img = render_classification_sample(label, np.random.default_rng(label), 64)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert img.astype(np.float32).std() > 20


def test_classification_patterns_are_shared_by_pairs():
    # (class balance: test_classification_layout_and_counts, from the written meta files)
    assert set(TOY_CLS_PATTERNS) == set(TOY_CLS_CLASSES)
    counts = {p: list(TOY_CLS_PATTERNS.values()).count(p) for p in TOY_PATTERNS}
    assert counts == dict.fromkeys(TOY_PATTERNS, 2)


def test_classification_nuisances_hide_the_class_from_raw_pixels():
    # Colours, position, scale, rotation, background, clutter and occlusion vary
    # independently of the class: nearest neighbours in pixel space are at chance level.
    def images(split: str, n: int):
        rng = [np.random.default_rng([7, split == "val", i]) for i in range(n)]
        x = np.stack([render_classification_sample(i % K_CLS, rng[i], 32) for i in range(n)])
        return torch.from_numpy(x).float().flatten(1), torch.arange(n) % K_CLS

    from lut_plugin.evaluation import knn_top1

    bank, bank_y = images("train", 400)
    query, query_y = images("val", 200)
    assert knn_top1(bank - bank.mean(0), bank_y, query - bank.mean(0), query_y) < 20.0


def test_ade_layout_and_label_values(tmp_path):
    root = ensure_toy_dataset(tmp_path / "ade", "ade", **SMALL_ADE)
    for split, tag, count in (("training", "train", 6), ("validation", "val", 3)):
        imgs = sorted((root / "images" / split).glob("*.jpg"))
        anns = sorted((root / "annotations" / split).glob("*.png"))
        assert len(imgs) == count and len(anns) == count
        assert [p.stem for p in imgs] == [p.stem for p in anns]
        assert imgs[0].name == f"ADE_{tag}_00000001.jpg"
        for img_path, ann_path in zip(imgs, anns):
            img = Image.open(img_path)
            ann = Image.open(ann_path)
            assert img.mode == "RGB" and img.size == (48, 48)
            assert ann.mode == "L" and ann.size == (48, 48)
            lab = np.asarray(ann)
            assert lab.dtype == np.uint8
            assert set(np.unique(lab)) <= set(range(K + 1))
            assert (lab == 0).any() and (lab > 0).any()


def test_segmentation_labels_follow_the_painted_shapes():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        img, lab = render_segmentation_sample(rng, 64, max_shapes=3)
        seen |= set(np.unique(lab).tolist())
        assert lab.shape == (64, 64)
        assert 0.02 < (lab > 0).mean() < 0.95
    assert seen == set(range(K + 1))  # every class and the background occur
    # one plain shape: labelled pixels carry the shape colour, far from the background
    for seed in range(20):
        img, lab = render_segmentation_sample(np.random.default_rng(seed), 64, max_shapes=1)
        fg = lab > 0
        if TOY_CLASSES.index("stripes") + 1 in lab:  # two colours: skip
            continue
        inside = img[fg].astype(np.float32)
        outside = img[~fg].astype(np.float32)
        assert np.linalg.norm(inside.mean(0) - outside.mean(0)) > 60


# ------------------------------------------------------------------------ ensure / atomic


def test_ensure_generates_once_and_checks_parameters(tmp_path):
    root = tmp_path / "data" / "toy"
    ensure_toy_dataset(root, "cls", **SMALL_CLS)
    before = _digest(root)
    mtime = (root / META_FILE).stat().st_mtime_ns
    ensure_toy_dataset(root, "cls", **SMALL_CLS)  # already there: untouched
    assert (root / META_FILE).stat().st_mtime_ns == mtime and _digest(root) == before
    assert [p.name for p in root.parent.iterdir()] == ["toy"]  # no temp folder left

    with pytest.raises(ValueError, match="num_train: on disk 14, requested 15"):
        ensure_toy_dataset(root, "cls", image_size=32, num_train=15, num_val=7)
    with pytest.raises(ValueError, match="kind"):
        ensure_toy_dataset(root, "ade", **SMALL_CLS)

    other = tmp_path / "not_toy"
    other.mkdir()
    (other / "x.txt").write_text("user data")
    with pytest.raises(ValueError, match="not a generated toy dataset"):
        ensure_toy_dataset(other, "cls", **SMALL_CLS)
    assert (other / "x.txt").read_text() == "user data"

    empty = tmp_path / "empty"
    empty.mkdir()
    ensure_toy_dataset(empty, "ade", **SMALL_ADE)  # an empty folder is filled
    assert len(list((empty / "images" / "training").glob("*.jpg"))) == 6

    with pytest.raises(ValueError, match="kind must be 'cls' or 'ade'"):
        ensure_toy_dataset(tmp_path / "x", "seg")
    with pytest.raises(ValueError, match="image_size"):
        ensure_toy_dataset(tmp_path / "y", "cls", image_size=8)
    assert not (tmp_path / "y").exists()


def _ensure_worker(root: str, barrier) -> str:
    barrier.wait()
    ensure_toy_dataset(root, "cls", **SMALL_CLS)
    return "ok"


def test_concurrent_ensure_is_atomic(tmp_path):
    root = tmp_path / "shared"
    ctx = mp.get_context("fork")
    n = 3
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            results = pool.starmap(_ensure_worker, [(str(root), barrier)] * n)
    assert results == ["ok"] * n
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]  # losers cleaned up
    reference = ensure_toy_dataset(tmp_path / "ref", "cls", **SMALL_CLS)
    assert _digest(root) == _digest(reference)


def test_make_toy_data_cli(tmp_path, capsys):
    path = REPO / "tools" / "make_toy_data.py"
    spec = importlib.util.spec_from_file_location("make_toy_data", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "ade"
    args = ["--kind", "ade", "--out", str(out), "--image-size", "32", "--num-train", "3"]
    assert tool.main(args) == 0
    assert len(list((out / "annotations" / "training").glob("*.png"))) == 3
    assert len(list((out / "images" / "validation").glob("*.jpg"))) == 8
    assert tool.main(args) == 1 and "exists" in capsys.readouterr().err
    assert tool.main(args[:-1] + ["5", "--force"]) == 0
    assert len(list((out / "annotations" / "training").glob("*.png"))) == 5


# ------------------------------------------------------------------ registered datasets


def test_toy_shapes_dataset_builds_through_mmpretrain(tmp_path):
    from mmpretrain.registry import DATASETS

    init_default_scope("mmpretrain")
    root = tmp_path / "toy_shapes"
    cfg = dict(
        type="LUTToyShapesDataset",
        data_root=str(root),
        split="val",
        pipeline=[dict(type="LoadImageFromFile"), dict(type="PackInputs")],
        **SMALL_CLS,
    )
    dataset = DATASETS.build(cfg)  # generates the folder on first use
    assert (root / META_FILE).is_file()
    assert len(dataset) == 7
    assert dataset.metainfo["classes"] == TOY_CLS_CLASSES
    labels = [int(dataset.get_data_info(i)["gt_label"]) for i in range(len(dataset))]
    assert labels == [i % K_CLS for i in range(7)]
    item = dataset[3]
    assert item["inputs"].shape == (3, 32, 32) and item["inputs"].dtype == torch.uint8
    assert int(item["data_samples"].gt_label) == 3
    train = DATASETS.build(dict(cfg, split="train"))
    assert len(train) == 14

    # the same folder also reads with upstream CustomDataset by scanning folders
    plain = DATASETS.build(dict(type="CustomDataset", data_root=str(root), data_prefix="val"))
    assert plain.CLASSES == TOY_CLS_CLASSES
    scanned = sorted(
        (Path(plain.get_data_info(i)["img_path"]).name, int(plain.get_data_info(i)["gt_label"]))
        for i in range(len(plain))
    )
    ours = sorted(
        (Path(dataset.get_data_info(i)["img_path"]).name, labels[i]) for i in range(len(dataset))
    )
    assert scanned == ours

    with pytest.raises(ValueError, match="split"):
        DATASETS.build(dict(cfg, split="test"))


def test_toy_shapes_dataset_with_lut_two_view_pipeline(tmp_path):
    from mmengine.dataset import default_collate
    from mmpretrain.registry import DATASETS

    from lut_plugin.datasets import lut_view_pipelines

    init_default_scope("mmpretrain")
    dataset = DATASETS.build(
        dict(
            type="LUTToyShapesDataset",
            data_root=str(tmp_path / "toy"),
            pipeline=lut_view_pipelines(32)[2],
            **SMALL_CLS,
        )
    )
    batch = default_collate([dataset[0], dataset[1]])
    assert len(batch["inputs"]) == 2
    assert [tuple(v.shape) for v in batch["inputs"]] == [(2, 3, 32, 32), (2, 3, 32, 32)]


def test_toy_ade20k_dataset_builds_through_mmseg(tmp_path):
    from mmseg.registry import DATASETS

    import lut_plugin.mmseg  # noqa: F401  (registers LUTToyADE20KDataset)

    init_default_scope("mmseg")
    root = tmp_path / "toy_ade"
    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations"),
        dict(type="PackSegInputs"),
    ]
    train = DATASETS.build(
        dict(type="LUTToyADE20KDataset", data_root=str(root), pipeline=pipeline, **SMALL_ADE)
    )
    val = DATASETS.build(
        dict(
            type="LUTToyADE20KDataset",
            data_root=str(root),
            data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation"),
            pipeline=pipeline,
            test_mode=True,
            **SMALL_ADE,
        )
    )
    assert len(train) == 6 and len(val) == 3
    assert train.metainfo["classes"] == TOY_CLASSES and train.reduce_zero_label
    assert train.label_map is None  # own METAINFO: no remapping of the 150 ADE classes
    seen = set()
    for i in range(len(train)):
        item = train[i]
        assert item["inputs"].shape == (3, 48, 48)
        seg = item["data_samples"].gt_sem_seg.data
        assert seg.shape == (1, 48, 48)
        raw = np.asarray(Image.open(train.get_data_info(i)["seg_map_path"]))
        expected = raw.astype(np.int64) - 1
        expected[raw == 0] = 255  # reduce_zero_label: "other" becomes ignore
        assert np.array_equal(seg[0].numpy(), expected)
        seen |= set(np.unique(expected).tolist())
    assert 255 in seen and seen <= set(range(K)) | {255}
