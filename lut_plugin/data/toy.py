"""Procedural toy datasets that the project makes itself (no downloads).

Two layouts are generated from the same shape renderer (numpy + PIL only):

* ``kind='cls'``: an ImageNet-like classification folder, one shape per image, the shape
  kind is the class label::

      <root>/train/<class>/<class>_00000.png
      <root>/val/<class>/<class>_00000.png
      <root>/meta/train.txt            # "<class>/<file> <label>" lines (mmpretrain CustomDataset)
      <root>/meta/val.txt
      <root>/classes.txt
      <root>/toy_meta.json             # generation parameters, written last

* ``kind='ade'``: an ADE20K-layout segmentation folder, 1..``max_shapes`` shapes per image::

      <root>/images/{training,validation}/ADE_{train,val}_00000001.jpg
      <root>/annotations/{training,validation}/ADE_{train,val}_00000001.png
      <root>/classes.txt
      <root>/toy_meta.json

  Label maps are uint8: 0 = background ("other", becomes 255 = ignore with
  ``reduce_zero_label=True``), ``k + 1`` = shape kind ``TOY_CLASSES[k]``.

Every image is drawn from its own random generator seeded by ``(seed, kind, split, index)``,
so the same parameters give byte-identical files. :func:`ensure_toy_dataset` generates a
folder only if it is missing, atomically (temporary folder + rename), so several processes
or distributed ranks may call it at once.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: Shape kinds, in alphabetical order so that folder-scanning loaders (which sort the
#: sub-folder names) give the same label indices as the annotation files.
TOY_CLASSES: tuple[str, ...] = ("circle", "cross", "ring", "square", "stripes", "triangle")

#: Colours used to display the segmentation classes (RGB).
TOY_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
)

#: Bumped whenever the renderer changes, so an old folder is not silently reused.
GENERATOR_VERSION = 1

META_FILE = "toy_meta.json"

_KIND_CODE = {"cls": 1, "ade": 2}
_SPLIT_CODE = {"train": 0, "val": 1}
_ADE_SPLIT_DIR = {"train": "training", "val": "validation"}
_ADE_SPLIT_TAG = {"train": "train", "val": "val"}


def _rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    """One independent generator per image (order independent, reproducible)."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _KIND_CODE[kind], _SPLIT_CODE[split], int(index)])
    )


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of shape (size, size)."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    img = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img, dtype=np.float32), -1.0, 1.0)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 255.0, size=3).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A two-colour linear gradient in a random direction with a smooth texture."""
    c0, c1 = _random_colour(rng), _random_colour(rng)
    theta = rng.uniform(0.0, 2.0 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = xx * math.cos(theta) + yy * math.sin(theta)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None, :] * (1.0 - t[..., None]) + c1[None, None, :] * t[..., None]
    texture = _smooth_noise(rng, size, cells=int(rng.integers(3, 9)))
    img = img + rng.uniform(10.0, 30.0) * texture[..., None]
    return img


def _contrasting_colour(rng: np.random.Generator, reference: np.ndarray) -> np.ndarray:
    """A colour far enough from ``reference`` (mean background colour) to be visible."""
    colour = _random_colour(rng)
    for _ in range(32):
        if float(np.linalg.norm(colour - reference)) >= 110.0:
            break
        colour = _random_colour(rng)
    else:
        colour = 255.0 - reference
    return colour


def _rotate(points: np.ndarray, angle: float, centre: tuple[float, float]) -> list[tuple]:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]], dtype=np.float64)
    pts = points @ rot.T + np.asarray(centre, dtype=np.float64)
    return [tuple(p) for p in pts]


def _shape_mask(
    kind: str, rng: np.random.Generator, size: int, radius: float, centre: tuple[float, float]
) -> np.ndarray:
    """Boolean mask (size, size) of one shape of the given kind."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = centre
    r = radius
    angle = rng.uniform(0.0, 2.0 * math.pi)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif kind == "ring":
        inner = r * rng.uniform(0.45, 0.6)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif kind in ("square", "stripes"):
        half = r / math.sqrt(2.0) * 1.15
        pts = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        draw.polygon(_rotate(pts, angle, centre), fill=255)
    elif kind == "triangle":
        pts = np.array([[r * math.cos(a), r * math.sin(a)] for a in (0.0, 2.094395, 4.188790)])
        draw.polygon(_rotate(pts, angle, centre), fill=255)
    elif kind == "cross":
        arm = r * rng.uniform(0.28, 0.38)
        bar = np.array([[-r, -arm], [r, -arm], [r, arm], [-r, arm]])
        draw.polygon(_rotate(bar, angle, centre), fill=255)
        draw.polygon(_rotate(bar, angle + math.pi / 2.0, centre), fill=255)
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {TOY_CLASSES}")
    return np.asarray(canvas, dtype=np.uint8) > 127


def _paint_shape(
    img: np.ndarray, mask: np.ndarray, kind: str, rng: np.random.Generator, size: int
) -> None:
    """Paint a shape in place: flat colour with light shading, stripes for ``'stripes'``."""
    colour = _contrasting_colour(rng, img[mask].mean(axis=0) if mask.any() else img.mean((0, 1)))
    shading = 1.0 + 0.08 * _smooth_noise(rng, size, cells=4)
    fill = colour[None, None, :] * shading[..., None]
    if kind == "stripes":
        second = _contrasting_colour(rng, colour)
        period = rng.uniform(0.12, 0.2) * size
        theta = rng.uniform(0.0, math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        phase = (xx * math.cos(theta) + yy * math.sin(theta)) / period
        band = (np.floor(phase) % 2 == 0)[..., None]
        fill = np.where(band, fill, second[None, None, :] * shading[..., None])
    img[mask] = fill[mask]


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = img + rng.normal(0.0, 3.0, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_classification_sample(
    label: int, rng: np.random.Generator, image_size: int = 64
) -> np.ndarray:
    """Render one RGB image (H, W, 3) uint8 showing one shape of class ``label``.

    Args:
        label (int): Index into :data:`TOY_CLASSES`.
        rng (np.random.Generator): Source of randomness.
        image_size (int): Side length in pixels.
    """
    kind = TOY_CLASSES[label]
    size = image_size
    img = _background(rng, size)
    radius = rng.uniform(0.24, 0.38) * size
    margin = radius * 0.8
    centre = (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))
    mask = _shape_mask(kind, rng, size, radius, centre)
    _paint_shape(img, mask, kind, rng, size)
    return _finish(img, rng)


def render_segmentation_sample(
    rng: np.random.Generator, image_size: int = 64, max_shapes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Render one RGB image and its label map for the ADE20K-layout toy dataset.

    Args:
        rng (np.random.Generator): Source of randomness.
        image_size (int): Side length in pixels.
        max_shapes (int): Each image shows between 1 and ``max_shapes`` shapes.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(img, label)``, ``img`` (H, W, 3) uint8 RGB and
        ``label`` (H, W) uint8 with 0 = background and ``k + 1`` = ``TOY_CLASSES[k]``
        (later shapes occlude earlier ones).
    """
    size = image_size
    img = _background(rng, size)
    label = np.zeros((size, size), dtype=np.uint8)
    num = int(rng.integers(1, max_shapes + 1))
    for _ in range(num):
        k = int(rng.integers(0, len(TOY_CLASSES)))
        radius = rng.uniform(0.14, 0.3) * size
        centre = (
            rng.uniform(radius * 0.6, size - radius * 0.6),
            rng.uniform(radius * 0.6, size - radius * 0.6),
        )
        mask = _shape_mask(TOY_CLASSES[k], rng, size, radius, centre)
        _paint_shape(img, mask, TOY_CLASSES[k], rng, size)
        label[mask] = k + 1
    return _finish(img, rng), label


def _check_params(image_size: int, num_train: int, num_val: int) -> None:
    if int(image_size) < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    if int(num_train) < 1 or int(num_val) < 1:
        raise ValueError(f"num_train and num_val must be >= 1, got {num_train}, {num_val}")


def _write_meta(root: Path, meta: dict) -> None:
    (root / "classes.txt").write_text("\n".join(TOY_CLASSES) + "\n")
    (root / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, format="PNG", optimize=False)


def write_toy_classification(
    out_dir: str | os.PathLike,
    image_size: int = 64,
    num_train: int = 512,
    num_val: int = 128,
    seed: int = 0,
) -> Path:
    """Write the classification toy dataset into ``out_dir`` (created; must be empty).

    Image ``i`` of a split has class ``i % len(TOY_CLASSES)``, so classes are balanced.

    Args:
        out_dir (str | os.PathLike): Destination folder.
        image_size (int): Side length of the square images. Defaults to 64.
        num_train (int): Number of training images. Defaults to 512.
        num_val (int): Number of validation images. Defaults to 128.
        seed (int): Random seed. Defaults to 0.

    Returns:
        Path: ``out_dir``.
    """
    _check_params(image_size, num_train, num_val)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    for split, count in (("train", num_train), ("val", num_val)):
        lines = []
        for name in TOY_CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            label = i % len(TOY_CLASSES)
            name = TOY_CLASSES[label]
            img = render_classification_sample(label, _rng(seed, "cls", split, i), image_size)
            rel = f"{name}/{name}_{i:05d}.png"
            _save_png(img, root / split / rel)
            lines.append(f"{rel} {label}")
        (root / "meta" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    _write_meta(root, toy_params("cls", image_size, num_train, num_val, seed))
    return root


def write_toy_ade20k(
    out_dir: str | os.PathLike,
    image_size: int = 64,
    num_train: int = 32,
    num_val: int = 8,
    seed: int = 0,
    max_shapes: int = 3,
) -> Path:
    """Write the ADE20K-layout toy segmentation dataset into ``out_dir``.

    Args:
        out_dir (str | os.PathLike): Destination folder.
        image_size (int): Side length of the square images. Defaults to 64.
        num_train (int): Number of training images. Defaults to 32.
        num_val (int): Number of validation images. Defaults to 8.
        seed (int): Random seed. Defaults to 0.
        max_shapes (int): Maximum number of shapes per image. Defaults to 3.

    Returns:
        Path: ``out_dir``.
    """
    _check_params(image_size, num_train, num_val)
    if int(max_shapes) < 1:
        raise ValueError(f"max_shapes must be >= 1, got {max_shapes}")
    root = Path(out_dir)
    for split, count in (("train", num_train), ("val", num_val)):
        img_dir = root / "images" / _ADE_SPLIT_DIR[split]
        ann_dir = root / "annotations" / _ADE_SPLIT_DIR[split]
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img, label = render_segmentation_sample(
                _rng(seed, "ade", split, i), image_size, max_shapes
            )
            stem = f"ADE_{_ADE_SPLIT_TAG[split]}_{i + 1:08d}"
            Image.fromarray(img).save(img_dir / f"{stem}.jpg", format="JPEG", quality=95)
            _save_png(label, ann_dir / f"{stem}.png")
    meta = toy_params("ade", image_size, num_train, num_val, seed)
    meta["max_shapes"] = int(max_shapes)
    _write_meta(root, meta)
    return root


def toy_params(kind: str, image_size: int, num_train: int, num_val: int, seed: int) -> dict:
    """The parameter record stored in ``toy_meta.json`` (used to detect mismatches)."""
    if kind not in _KIND_CODE:
        raise ValueError(f"kind must be 'cls' or 'ade', got {kind!r}")
    return dict(
        kind=kind,
        generator_version=GENERATOR_VERSION,
        image_size=int(image_size),
        num_train=int(num_train),
        num_val=int(num_val),
        seed=int(seed),
        classes=list(TOY_CLASSES),
    )


def ensure_toy_dataset(
    root: str | os.PathLike,
    kind: str = "cls",
    image_size: int | None = None,
    num_train: int | None = None,
    num_val: int | None = None,
    seed: int = 0,
    max_shapes: int = 3,
) -> Path:
    """Generate the toy dataset at ``root`` unless it is already there.

    The data is written to a temporary sibling folder and renamed to ``root`` in one step,
    so concurrent callers (data-loader workers, distributed ranks, parallel test runs) see
    either no folder or a complete one. If ``root`` exists, its ``toy_meta.json`` must
    match the requested parameters; otherwise a ``ValueError`` names the difference.

    Args:
        root (str | os.PathLike): Dataset folder, e.g. ``'data/generated/toy_shapes'``.
        kind (str): ``'cls'`` (classification folders) or ``'ade'`` (ADE20K layout).
        image_size (int, optional): Image side; defaults to 64.
        num_train (int, optional): Training images; defaults to 512 (cls) / 32 (ade).
        num_val (int, optional): Validation images; defaults to 128 (cls) / 8 (ade).
        seed (int): Random seed. Defaults to 0.
        max_shapes (int): Shapes per image for ``kind='ade'``. Defaults to 3.

    Returns:
        Path: ``root``.
    """
    if kind not in _KIND_CODE:
        raise ValueError(f"kind must be 'cls' or 'ade', got {kind!r}")
    defaults = {"cls": (64, 512, 128), "ade": (64, 32, 8)}[kind]
    image_size = defaults[0] if image_size is None else image_size
    num_train = defaults[1] if num_train is None else num_train
    num_val = defaults[2] if num_val is None else num_val
    wanted = toy_params(kind, image_size, num_train, num_val, seed)
    if kind == "ade":
        wanted["max_shapes"] = int(max_shapes)
    root = Path(root)

    if not _is_populated(root):
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            if kind == "cls":
                write_toy_classification(tmp, image_size, num_train, num_val, seed)
            else:
                write_toy_ade20k(tmp, image_size, num_train, num_val, seed, max_shapes)
            try:
                # Atomic on POSIX; replaces ``root`` only if it is absent or an empty folder.
                os.rename(tmp, root)
            except OSError:
                if not (root / META_FILE).is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise ValueError(
            f"{root} exists but is not a generated toy dataset (no {META_FILE}); "
            "remove it or choose another data_root"
        )
    found = json.loads(meta_path.read_text())
    diff = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
    if diff:
        details = ", ".join(f"{k}: on disk {a!r}, requested {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"toy dataset at {root} was generated with other parameters ({details}); "
            "delete the folder to regenerate it or choose another data_root"
        )
    return root


def _is_populated(root: Path) -> bool:
    return root.exists() and (not root.is_dir() or any(root.iterdir()))


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """Read an annotation PNG as a (H, W) uint8 array."""
    return np.asarray(Image.open(path), dtype=np.uint8)


def class_counts(labels: Sequence[int]) -> dict[str, int]:
    """Count labels per class name (helper for reports and tests)."""
    counts = dict.fromkeys(TOY_CLASSES, 0)
    for label in labels:
        counts[TOY_CLASSES[int(label)]] += 1
    return counts
