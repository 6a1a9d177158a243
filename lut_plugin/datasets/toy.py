"""Procedural toy datasets that the project draws itself (numpy and PIL only, no downloads).

* ``kind='cls'``: an ImageNet-like classification folder (mmpretrain's ``CustomDataset``).
  Each image shows one object whose outline and surface pattern are the class
  (:data:`TOY_CLS_CLASSES`); colours, size, position, rotation, pattern scale, backdrop,
  clutter and occlusion are drawn independently of the class::

      <root>/{train,val}/<class>/<class>_00000.png
      <root>/meta/{train,val}.txt      # "<class>/<file> <label>" lines

* ``kind='ade'``: an ADE20K-layout segmentation folder, 1 to ``max_shapes`` shapes per image;
  uint8 labels, 0 = background (255 = ignore with ``reduce_zero_label=True``), ``k + 1`` =
  :data:`TOY_CLASSES` ``[k]``::

      <root>/{images,annotations}/{training,validation}/ADE_{train,val}_00000001.{jpg,png}

Both also hold ``classes.txt`` and ``toy_meta.json`` (the parameters, written last). Every
image has its own generator, seeded by ``(seed, kind, split, index)``, so the same parameters
give byte-identical files; :func:`ensure_toy_dataset` writes a folder atomically.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: Classes of both sets are alphabetical, so folder-scanning loaders (which sort the folder
#: names) give the label indices of the annotation files. Shape kinds of ``kind='ade'``:
TOY_CLASSES: tuple[str, ...] = ("circle", "cross", "ring", "square", "stripes", "triangle")

#: Colours used to display the segmentation classes (RGB).
TOY_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)
)  # fmt: skip

#: Surface patterns of the objects (:data:`TOY_CLS_PATTERNS`) and of faint backdrops.
TOY_PATTERNS: tuple[str, ...] = ("flat", "stripes", "checker", "dots", "grid")

#: The classes of ``kind='cls'`` (the object's outline) and their surface patterns; each
#: pattern is shared by two classes, so the outline decides between them.
TOY_CLS_PATTERNS: dict[str, str] = dict(
    arrow="grid", bar="stripes", chevron="grid", circle="flat", crescent="checker",
    cross="dots", ring="stripes", square="checker", star="flat", triangle="dots",
)  # fmt: skip
TOY_CLS_CLASSES: tuple[str, ...] = tuple(sorted(TOY_CLS_PATTERNS))

#: Bumped whenever a renderer changes, so an old folder is not silently reused.
GENERATOR_VERSIONS: dict[str, int] = {"cls": 2, "ade": 1}

META_FILE = "toy_meta.json"

_KIND_CODE = {"cls": 1, "ade": 2}
_KIND_CLASSES = {"cls": TOY_CLS_CLASSES, "ade": TOY_CLASSES}
_SPLIT_CODE = {"train": 0, "val": 1}
_ADE_SPLIT_DIR = {"train": "training", "val": "validation"}
_DEFAULTS = {"cls": (64, 512, 128), "ade": (64, 32, 8)}  # image_size, num_train, num_val


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


def _grey_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gradient between two greyish colours: the scene's colour lies in the objects."""

    def greyish() -> np.ndarray:
        return np.clip(rng.uniform(50.0, 205.0) + rng.uniform(-8.0, 8.0, size=3), 0.0, 255.0)

    c0, c1 = greyish().astype(np.float32), greyish().astype(np.float32)
    return _gradient(rng, size, c0, c1)


def _gradient(rng: np.random.Generator, size: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """From ``c0`` to ``c1`` in a random direction, plus a smooth texture."""
    theta = rng.uniform(0.0, 2.0 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = xx * math.cos(theta) + yy * math.sin(theta)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None, :] * (1.0 - t[..., None]) + c1[None, None, :] * t[..., None]
    texture = _smooth_noise(rng, size, cells=int(rng.integers(3, 9)))
    return img + rng.uniform(10.0, 30.0) * texture[..., None]


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


def _distinct_colour(rng: np.random.Generator, *references: np.ndarray) -> np.ndarray:
    """A colour at least 100 (RGB distance) from every reference, else the farthest of 32
    draws."""
    best, best_distance = None, -1.0
    for _ in range(32):
        colour = _random_colour(rng)
        distance = min(float(np.linalg.norm(colour - ref)) for ref in references)
        if distance >= 100.0:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _rotate(points: np.ndarray, angle: float, centre: tuple[float, float]) -> list[tuple]:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]], dtype=np.float64)
    pts = points @ rot.T + np.asarray(centre, dtype=np.float64)
    return [tuple(p) for p in pts]


def _shape_mask(
    kind: str, rng: np.random.Generator, size: int, radius: float, centre: tuple[float, float]
) -> np.ndarray:
    """Boolean mask (size, size) of one shape of a :data:`TOY_CLASSES` or
    :data:`TOY_CLS_CLASSES` kind, rotated."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = centre
    r = radius
    angle = rng.uniform(0.0, 2.0 * math.pi)
    pts = None  # a polygon, rotated by ``angle`` about ``centre``
    if kind in ("circle", "ring", "crescent"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    if kind == "ring":
        inner = r * rng.uniform(0.45, 0.6)
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif kind in ("square", "stripes"):
        half = r / math.sqrt(2.0) * 1.15
        pts = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    elif kind == "triangle":
        pts = np.array([[r * math.cos(a), r * math.sin(a)] for a in (0.0, 2.094395, 4.188790)])
    elif kind == "cross":
        arm = r * rng.uniform(0.28, 0.38)
        pts = np.array([[-r, -arm], [r, -arm], [r, arm], [-r, arm]])
        draw.polygon(_rotate(pts, angle + math.pi / 2.0, centre), fill=255)
    elif kind == "star":
        inner = r * rng.uniform(0.38, 0.5)
        radii = [(r, inner)[i % 2] for i in range(10)]
        pts = np.array([[rad * math.cos(i * math.pi / 5.0), rad * math.sin(i * math.pi / 5.0)]
                        for i, rad in enumerate(radii)])  # fmt: skip
    elif kind == "crescent":
        bite, shift = r * rng.uniform(0.75, 0.9), r * rng.uniform(0.35, 0.5)
        bx, by = cx + shift * math.cos(angle), cy + shift * math.sin(angle)
        draw.ellipse([bx - bite, by - bite, bx + bite, by + bite], fill=0)
    elif kind == "arrow":
        w, head = r * rng.uniform(0.14, 0.2), r * rng.uniform(0.4, 0.5)
        pts = np.array(
            [[-r, -w], [0.1 * r, -w], [0.1 * r, -head], [r, 0.0], [0.1 * r, head], [0.1 * r, w],
             [-r, w]]
        )  # fmt: skip
    elif kind == "chevron":
        t = rng.uniform(0.4, 0.55)  # arm thickness
        pts = np.array(
            [[-0.9, -0.8], [-0.9 + t, -0.8], [0.0, 0.85 - 1.9 * t], [0.9 - t, -0.8], [0.9, -0.8],
             [0.0, 0.85]]
        ) * r  # fmt: skip
    elif kind == "bar":
        w = r * rng.uniform(0.3, 0.42)
        pts = np.array([[-r, -w], [r, -w], [r, w], [-r, w]])
    elif kind != "circle":
        raise ValueError(
            f"unknown shape kind {kind!r}; expected one of {TOY_CLASSES} or {TOY_CLS_CLASSES}"
        )
    if pts is not None:
        draw.polygon(_rotate(pts, angle, centre), fill=255)
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


def _texture(
    rng: np.random.Generator, size: int, c0: np.ndarray, c1: np.ndarray, pattern: str
) -> np.ndarray:
    """A two-colour pattern at a random scale, angle and phase, ``(size, size, 3)``.

    ``pattern`` is one of :data:`TOY_PATTERNS` other than ``'flat'``.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0.0, math.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta) + rng.uniform(0.0, size)
    v = -xx * math.sin(theta) + yy * math.cos(theta) + rng.uniform(0.0, size)
    period = rng.uniform(0.11, 0.2) * size
    fu, fv = u / period % 1.0, v / period % 1.0
    if pattern == "stripes":
        on = fu < 0.5
    elif pattern == "checker":
        on = (fu < 0.5) ^ (fv < 0.5)
    elif pattern == "dots":
        on = (fu - 0.5) ** 2 + (fv - 0.5) ** 2 < rng.uniform(0.05, 0.1)
    elif pattern == "grid":
        width = rng.uniform(0.2, 0.3)
        on = (fu < width) | (fv < width)
    else:
        raise ValueError(f"unknown pattern {pattern!r}; expected one of {TOY_PATTERNS[1:]}")
    return np.where(on[..., None], c0[None, None, :], c1[None, None, :])


def _random_mask(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """A small blob (ellipse) or a thin line segment anywhere: clutter."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    x, y = rng.uniform(0, size, size=2)
    if rng.random() < 0.5:
        rx, ry = rng.uniform(0.3, 1.0, size=2) * scale * size
        draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=255)
    else:
        length, a = rng.uniform(1.5, 4.0) * scale * size, rng.uniform(0.0, 2.0 * math.pi)
        end = (x + length * math.cos(a), y + length * math.sin(a))
        draw.line([(x, y), end], fill=255, width=max(1, round(rng.uniform(0.02, 0.05) * size)))
    return np.asarray(canvas, dtype=np.uint8) > 127


def _bar_mask(rng: np.random.Generator, size: int, through: tuple[float, float]) -> np.ndarray:
    """A straight bar across the whole image through the point ``through``: an occluder."""
    canvas = Image.new("L", (size, size), 0)
    a = rng.uniform(0.0, math.pi)
    dx, dy = 2 * size * math.cos(a), 2 * size * math.sin(a)
    x, y = through
    width = max(2, round(rng.uniform(0.07, 0.12) * size))
    ImageDraw.Draw(canvas).line([(x - dx, y - dy), (x + dx, y + dy)], fill=255, width=width)
    return np.asarray(canvas, dtype=np.uint8) > 127


def _paint(
    img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, pattern: str = "flat"
) -> None:
    """Paint ``mask`` in place in colours that stand out from what lies under it.

    ``'flat'``: one colour with light smooth shading; otherwise a two-colour
    :func:`_texture` whose colours both differ from the background, so the outline stays whole.
    """
    if not mask.any():
        return
    size = img.shape[0]
    under = img[mask].mean(axis=0)
    colour = _distinct_colour(rng, under)
    if pattern == "flat":
        fill = colour[None, None, :] * (1.0 + 0.08 * _smooth_noise(rng, size, cells=4))[..., None]
    else:
        fill = _texture(rng, size, colour, _distinct_colour(rng, colour, under), pattern)
    img[mask] = fill[mask]


def render_classification_sample(
    label: int, rng: np.random.Generator, image_size: int = 64
) -> np.ndarray:
    """Render one RGB image (H, W, 3) uint8 showing one object of class ``label``.

    A class is an outline with a surface pattern (:data:`TOY_CLS_PATTERNS`; each pattern is
    shared by two outlines, so both cues are needed). Everything else is drawn independently
    of the class:

    1. backdrop: a gradient between two greyish colours (random brightness) with smooth
       noise; with p = 0.5 a faint stripe, checker, dot or grid pattern on top;
    2. clutter behind the object: 0-2 small blobs or thin lines in random colours;
    3. the object: radius 0.26-0.4 of the image side, anywhere (centre at least 70 % of the
       radius from the border), random rotation; random colours that stand out from the
       backdrop under it (both colours of a pattern do, so the outline stays whole), the
       pattern at a random scale, angle and phase;
    4. occlusion, p = 0.3: a bar across the image through a point of the object, in a random
       colour, kept only if at least 70 % of the object stays visible;
    5. clutter in front: 0-1 small blob or line;
    6. pixel noise (sigma 3).

    Random colours are the main nuisance: raw pixels separate the classes poorly.

    Args:
        label (int): Index into :data:`TOY_CLS_CLASSES`.
        rng (np.random.Generator): Source of randomness.
        image_size (int): Side length in pixels.
    """
    kind = TOY_CLS_CLASSES[label]
    size = image_size
    img = _grey_background(rng, size)
    if rng.random() < 0.5:
        pattern = TOY_PATTERNS[int(rng.integers(1, len(TOY_PATTERNS)))]
        amplitude = rng.uniform(10.0, 30.0, size=3)
        faint = _texture(rng, size, np.zeros(3, np.float32), amplitude, pattern)
        img = img + faint - faint.mean(axis=(0, 1))
    for _ in range(int(rng.integers(0, 3))):
        _paint(img, _random_mask(rng, size, 0.08), rng)
    radius = rng.uniform(0.26, 0.4) * size
    margin = radius * 0.7
    centre = (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))
    obj = _shape_mask(kind, rng, size, radius, centre)
    _paint(img, obj, rng, TOY_CLS_PATTERNS[kind])
    if rng.random() < 0.3:
        ys, xs = np.nonzero(obj)
        pick = int(rng.integers(0, len(ys)))
        bar = _bar_mask(rng, size, (float(xs[pick]), float(ys[pick])))
        if (obj & ~bar).sum() >= 0.7 * obj.sum():
            _paint(img, bar, rng)
    for _ in range(int(rng.integers(0, 2))):
        _paint(img, _random_mask(rng, size, 0.06), rng)
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
    img = _gradient(rng, size, _random_colour(rng), _random_colour(rng))
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


def _save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, format="PNG", optimize=False)


def _write(root: Path, meta: dict) -> None:
    """Write the dataset that ``meta`` (see :func:`ensure_toy_dataset`) describes."""
    kind, size, seed = meta["kind"], meta["image_size"], meta["seed"]
    for split in ("train", "val"):
        count, lines = meta[f"num_{split}"], []
        if kind == "cls":
            for name in TOY_CLS_CLASSES:
                (root / split / name).mkdir(parents=True, exist_ok=True)
        else:
            for folder in ("images", "annotations"):
                (root / folder / _ADE_SPLIT_DIR[split]).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = _rng(seed, kind, split, i)
            if kind == "cls":
                label = i % len(TOY_CLS_CLASSES)  # balanced classes
                name = TOY_CLS_CLASSES[label]
                rel = f"{name}/{name}_{i:05d}.png"
                _save_png(render_classification_sample(label, rng, size), root / split / rel)
                lines.append(f"{rel} {label}")
            else:
                img, label = render_segmentation_sample(rng, size, meta["max_shapes"])
                stem = f"{_ADE_SPLIT_DIR[split]}/ADE_{split}_{i + 1:08d}"
                Image.fromarray(img).save(root / "images" / f"{stem}.jpg", "JPEG", quality=95)
                _save_png(label, root / "annotations" / f"{stem}.png")
        if kind == "cls":
            (root / "meta").mkdir(exist_ok=True)
            (root / "meta" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(meta["classes"]) + "\n")
    (root / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


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
    so concurrent callers (loader workers, distributed ranks, parallel tests) see no folder
    or a complete one. If ``root`` exists, its ``toy_meta.json`` must match the requested
    parameters, else a ``ValueError`` names the difference.

    Args:
        root (str | os.PathLike): Dataset folder, e.g. ``'data/generated/toy_shapes'``.
        kind (str): ``'cls'`` (classification folders) or ``'ade'`` (ADE20K layout).
            Defaults to ``'cls'``.
        image_size (int, optional): Image side, at least 16. Defaults to 64.
        num_train (int, optional): Training images. Defaults to 512 (cls) / 32 (ade).
        num_val (int, optional): Validation images. Defaults to 128 (cls) / 8 (ade).
        seed (int): Random seed. Defaults to 0.
        max_shapes (int): Most shapes per image for ``kind='ade'``. Defaults to 3.

    Returns:
        Path: ``root``.
    """
    if kind not in _KIND_CODE:
        raise ValueError(f"kind must be 'cls' or 'ade', got {kind!r}")
    given = (image_size, num_train, num_val)
    image_size, num_train, num_val = (
        int(d if v is None else v) for v, d in zip(given, _DEFAULTS[kind], strict=True)
    )
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    if num_train < 1 or num_val < 1:
        raise ValueError(f"num_train and num_val must be >= 1, got {num_train}, {num_val}")
    if kind == "ade" and int(max_shapes) < 1:
        raise ValueError(f"max_shapes must be >= 1, got {max_shapes}")
    wanted = dict(
        kind=kind,
        generator_version=GENERATOR_VERSIONS[kind],
        image_size=image_size,
        num_train=num_train,
        num_val=num_val,
        seed=int(seed),
        classes=list(_KIND_CLASSES[kind]),
        **({"max_shapes": int(max_shapes)} if kind == "ade" else {}),
    )
    root = Path(root)
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            _write(tmp, wanted)
            try:  # atomic on POSIX; replaces ``root`` only if absent or an empty folder
                os.rename(tmp, root)
            except OSError:
                if not (root / META_FILE).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not (root / META_FILE).is_file():
        raise ValueError(
            f"{root} exists but is not a generated toy dataset (no {META_FILE}); "
            "remove it or choose another data_root"
        )
    found = json.loads((root / META_FILE).read_text())
    diff = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
    if diff:
        details = ", ".join(f"{k}: on disk {a!r}, requested {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"toy dataset at {root} was generated with other parameters ({details}); "
            "delete the folder to regenerate it or choose another data_root"
        )
    return root
