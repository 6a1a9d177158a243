"""Procedural toy datasets drawn with numpy and PIL only: ``kind='cls'`` (classification
folders) and ``kind='ade'`` (ADE20K layout), as docs/data.md and docs/evaluation.md describe.
Every image has its own generator seeded by ``(seed, kind, split, index)``, so the same
parameters give byte-identical files; a renderer change must bump ``GENERATOR_VERSIONS``.
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

# Alphabetical, so folder-scanning loaders give the annotation files' label indices.
TOY_CLASSES: tuple[str, ...] = ("circle", "cross", "ring", "square", "stripes", "triangle")
TOY_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)
)  # fmt: skip
TOY_PATTERNS: tuple[str, ...] = ("flat", "stripes", "checker", "dots", "grid")
# kind='cls': outline -> surface pattern; each pattern is shared by two outlines
TOY_CLS_PATTERNS: dict[str, str] = dict(
    arrow="grid", bar="stripes", chevron="grid", circle="flat", crescent="checker",
    cross="dots", ring="stripes", square="checker", star="flat", triangle="dots",
)  # fmt: skip
TOY_CLS_CLASSES: tuple[str, ...] = tuple(sorted(TOY_CLS_PATTERNS))
GENERATOR_VERSIONS: dict[str, int] = {"cls": 2, "ade": 1}
META_FILE = "toy_meta.json"

_KIND_CODE = {"cls": 1, "ade": 2}
_KIND_CLASSES = {"cls": TOY_CLS_CLASSES, "ade": TOY_CLASSES}
_SPLIT_CODE = {"train": 0, "val": 1}
_ADE_SPLIT_DIR = {"train": "training", "val": "validation"}
_DEFAULTS = {"cls": (64, 512, 128), "ade": (64, 32, 8)}  # image_size, num_train, num_val


def _rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    key = [int(seed), _KIND_CODE[kind], _SPLIT_CODE[split], int(index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of shape (size, size)."""
    coarse = Image.fromarray(rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32))
    return np.clip(np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC)), -1.0, 1.0)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 255.0, size=3).astype(np.float32)


def _far_colour(rng: np.random.Generator, refs: list, threshold: float, fallback=None):
    """The first of 32 draws at least ``threshold`` (RGB distance) from every reference, else
    ``fallback`` after one more draw (ade) or the farthest draw (cls)."""
    best, best_distance = None, -1.0
    for _ in range(32):
        colour = _colour(rng)
        distance = min(float(np.linalg.norm(colour - ref)) for ref in refs)
        if distance >= threshold:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    if fallback is None:
        return best
    _colour(rng)  # version 1 drew a 33rd colour it never used: kept, same random stream
    return fallback


def _gradient(rng: np.random.Generator, size: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """From ``c0`` to ``c1`` in a random direction, plus a smooth texture."""
    theta = rng.uniform(0.0, 2.0 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = xx * math.cos(theta) + yy * math.sin(theta)
    t = ((t - t.min()) / max(float(t.max() - t.min()), 1e-6))[..., None]
    img = c0[None, None, :] * (1.0 - t) + c1[None, None, :] * t
    texture = _smooth_noise(rng, size, cells=int(rng.integers(3, 9)))
    return img + rng.uniform(10.0, 30.0) * texture[..., None]


def _draw(size: int, shape: str, xy: list, **kwargs) -> np.ndarray:
    """Boolean (size, size) mask of one ``ImageDraw`` ``shape`` (``'line'``, ``'ellipse'``)."""
    canvas = Image.new("L", (size, size), 0)
    getattr(ImageDraw.Draw(canvas), shape)(xy, fill=255, **kwargs)
    return np.asarray(canvas) > 127


def _rotate(points, angle: float, centre: tuple[float, float]) -> list[tuple]:
    c, s = math.cos(angle), math.sin(angle)
    pts = np.asarray(points) @ np.array([[c, -s], [s, c]]).T + np.asarray(centre, np.float64)
    return [tuple(p) for p in pts]


def _shape_mask(kind: str, rng: np.random.Generator, size: int, r: float,
                centre: tuple[float, float]) -> np.ndarray:  # fmt: skip
    """Boolean (size, size) mask of one rotated shape of :data:`TOY_CLASSES` or
    :data:`TOY_CLS_CLASSES`."""
    canvas = Image.new("L", (size, size), 0)
    draw, (cx, cy), u = ImageDraw.Draw(canvas), centre, rng.uniform
    angle = u(0.0, 2.0 * math.pi)
    pts = None  # a polygon, rotated by ``angle`` about ``centre``
    if kind in ("circle", "ring", "crescent"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    if kind == "ring":
        inner = r * u(0.45, 0.6)
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif kind in ("square", "stripes"):
        half = r / math.sqrt(2.0) * 1.15
        pts = [[-half, -half], [half, -half], [half, half], [-half, half]]
    elif kind == "triangle":
        pts = [[r * math.cos(a), r * math.sin(a)] for a in (0.0, 2.094395, 4.188790)]
    elif kind in ("cross", "bar"):
        w = r * (u(0.28, 0.38) if kind == "cross" else u(0.3, 0.42))
        pts = [[-r, -w], [r, -w], [r, w], [-r, w]]
        if kind == "cross":
            draw.polygon(_rotate(pts, angle + math.pi / 2.0, centre), fill=255)
    elif kind == "star":
        inner = r * u(0.38, 0.5)
        pts = [[(r, inner)[i % 2] * math.cos(i * math.pi / 5.0),
                (r, inner)[i % 2] * math.sin(i * math.pi / 5.0)] for i in range(10)]  # fmt: skip
    elif kind == "crescent":
        bite, shift = r * u(0.75, 0.9), r * u(0.35, 0.5)
        bx, by = cx + shift * math.cos(angle), cy + shift * math.sin(angle)
        draw.ellipse([bx - bite, by - bite, bx + bite, by + bite], fill=0)
    elif kind == "arrow":
        w, head = r * u(0.14, 0.2), r * u(0.4, 0.5)
        pts = [[-r, -w], [0.1 * r, -w], [0.1 * r, -head], [r, 0.0], [0.1 * r, head],
               [0.1 * r, w], [-r, w]]  # fmt: skip
    elif kind == "chevron":
        t = u(0.4, 0.55)  # arm thickness
        pts = np.array([[-0.9, -0.8], [-0.9 + t, -0.8], [0.0, 0.85 - 1.9 * t], [0.9 - t, -0.8],
                        [0.9, -0.8], [0.0, 0.85]]) * r  # fmt: skip
    if pts is not None:
        draw.polygon(_rotate(pts, angle, centre), fill=255)
    return np.asarray(canvas) > 127


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.rint(img + rng.normal(0.0, 3.0, size=img.shape)), 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator, size: int, c0: np.ndarray, c1: np.ndarray,
             pattern: str) -> np.ndarray:  # fmt: skip
    """A two-colour ``pattern`` (not ``'flat'``) at a random scale, angle and phase."""
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
    else:  # grid
        width = rng.uniform(0.2, 0.3)
        on = (fu < width) | (fv < width)
    return np.where(on[..., None], c0[None, None, :], c1[None, None, :])


def _clutter_mask(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """A small blob (ellipse) or a thin line segment anywhere."""
    x, y = rng.uniform(0, size, size=2)
    if rng.random() >= 0.5:
        length, a = rng.uniform(1.5, 4.0) * scale * size, rng.uniform(0.0, 2.0 * math.pi)
        end = (x + length * math.cos(a), y + length * math.sin(a))
        width = max(1, round(rng.uniform(0.02, 0.05) * size))
        return _draw(size, "line", [(x, y), end], width=width)
    rx, ry = rng.uniform(0.3, 1.0, size=2) * scale * size
    return _draw(size, "ellipse", [x - rx, y - ry, x + rx, y + ry])


def _paint(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
           pattern: str = "flat") -> None:  # fmt: skip
    """Paint ``mask`` in place (cls): lightly shaded flat colour or a two-colour
    :func:`_texture`, every colour distinct from what lies under it."""
    if not mask.any():
        return
    size, under = img.shape[0], img[mask].mean(axis=0)
    colour = _far_colour(rng, [under], 100.0)
    if pattern == "flat":
        fill = colour[None, None, :] * (1.0 + 0.08 * _smooth_noise(rng, size, cells=4))[..., None]
    else:
        fill = _texture(rng, size, colour, _far_colour(rng, [colour, under], 100.0), pattern)
    img[mask] = fill[mask]


def render_classification_sample(label: int, rng: np.random.Generator,
                                 image_size: int = 64) -> np.ndarray:  # fmt: skip
    """One (H, W, 3) uint8 RGB image of class ``label`` (recipe: docs/evaluation.md).

    Args:
        label (int): Index into :data:`TOY_CLS_CLASSES`.
        rng (np.random.Generator): Source of randomness.
        image_size (int): Side length in pixels.
    """
    kind, size = TOY_CLS_CLASSES[label], image_size
    # backdrop: a gradient between two greyish colours, half the time a faint pattern on top
    grey = [rng.uniform(50.0, 205.0) + rng.uniform(-8.0, 8.0, size=3) for _ in range(2)]
    img = _gradient(rng, size, *(np.clip(c, 0.0, 255.0).astype(np.float32) for c in grey))
    if rng.random() < 0.5:
        pattern = TOY_PATTERNS[int(rng.integers(1, len(TOY_PATTERNS)))]
        amplitude = rng.uniform(10.0, 30.0, size=3)
        faint = _texture(rng, size, np.zeros(3, np.float32), amplitude, pattern)
        img = img + faint - faint.mean(axis=(0, 1))
    for _ in range(int(rng.integers(0, 3))):  # clutter behind
        _paint(img, _clutter_mask(rng, size, 0.08), rng)
    radius = rng.uniform(0.26, 0.4) * size
    margin = radius * 0.7
    centre = (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))
    obj = _shape_mask(kind, rng, size, radius, centre)
    _paint(img, obj, rng, TOY_CLS_PATTERNS[kind])
    if rng.random() < 0.3:  # occluding bar through a point of the object, if 70 % stays
        ys, xs = np.nonzero(obj)
        pick = int(rng.integers(0, len(ys)))
        a = rng.uniform(0.0, math.pi)
        dx, dy = 2 * size * math.cos(a), 2 * size * math.sin(a)
        x, y = float(xs[pick]), float(ys[pick])
        width = max(2, round(rng.uniform(0.07, 0.12) * size))
        bar = _draw(size, "line", [(x - dx, y - dy), (x + dx, y + dy)], width=width)
        if (obj & ~bar).sum() >= 0.7 * obj.sum():
            _paint(img, bar, rng)
    for _ in range(int(rng.integers(0, 2))):  # clutter in front
        _paint(img, _clutter_mask(rng, size, 0.06), rng)
    return _finish(img, rng)


def render_segmentation_sample(rng: np.random.Generator, image_size: int = 64,
                               max_shapes: int = 3) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One ADE-layout sample: ``(img, label)``, (H, W, 3) uint8 RGB and (H, W) uint8 with
    0 = background, ``k + 1`` = ``TOY_CLASSES[k]`` (later shapes occlude earlier ones).

    Args:
        rng (np.random.Generator): Source of randomness.
        image_size (int): Side length in pixels.
        max_shapes (int): Each image shows between 1 and ``max_shapes`` shapes.
    """
    size = image_size
    img = _gradient(rng, size, _colour(rng), _colour(rng))
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        k = int(rng.integers(0, len(TOY_CLASSES)))
        radius = rng.uniform(0.14, 0.3) * size
        lo, hi = radius * 0.6, size - radius * 0.6
        centre = (rng.uniform(lo, hi), rng.uniform(lo, hi))
        mask = _shape_mask(TOY_CLASSES[k], rng, size, radius, centre)
        # flat colour with light shading, two colours in stripes
        under = img[mask].mean(axis=0) if mask.any() else img.mean((0, 1))
        colour = _far_colour(rng, [under], 110.0, 255.0 - under)
        shading = (1.0 + 0.08 * _smooth_noise(rng, size, cells=4))[..., None]
        fill = colour[None, None, :] * shading
        if TOY_CLASSES[k] == "stripes":
            second = _far_colour(rng, [colour], 110.0, 255.0 - colour)
            period, theta = rng.uniform(0.12, 0.2) * size, rng.uniform(0.0, math.pi)
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
            band = np.floor((xx * math.cos(theta) + yy * math.sin(theta)) / period) % 2 == 0
            fill = np.where(band[..., None], fill, second[None, None, :] * shading)
        img[mask] = fill[mask]
        label[mask] = k + 1
    return _finish(img, rng), label


def _write(root: Path, meta: dict) -> None:
    """Write the dataset that ``meta`` (see :func:`ensure_toy_dataset`) describes."""
    kind, size, seed, classes = meta["kind"], meta["image_size"], meta["seed"], meta["classes"]
    for split in ("train", "val"):
        sub, lines = _ADE_SPLIT_DIR[split], []
        folders = [f"{split}/{c}" for c in classes] + ["meta"]
        for folder in folders if kind == "cls" else [f"images/{sub}", f"annotations/{sub}"]:
            (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(meta[f"num_{split}"]):
            rng = _rng(seed, kind, split, i)
            if kind == "cls":
                label = i % len(classes)  # balanced classes
                rel = f"{classes[label]}/{classes[label]}_{i:05d}.png"
                img = render_classification_sample(label, rng, size)
                Image.fromarray(img).save(root / split / rel)
                lines.append(f"{rel} {label}\n")
            else:
                img, label = render_segmentation_sample(rng, size, meta["max_shapes"])
                stem = f"{sub}/ADE_{split}_{i + 1:08d}"
                Image.fromarray(img).save(root / "images" / f"{stem}.jpg", "JPEG", quality=95)
                Image.fromarray(label).save(root / "annotations" / f"{stem}.png")
        if kind == "cls":
            (root / "meta" / f"{split}.txt").write_text("".join(lines))
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    (root / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def ensure_toy_dataset(root: str | os.PathLike, kind: str = "cls", image_size: int | None = None,
                       num_train: int | None = None, num_val: int | None = None, seed: int = 0,
                       max_shapes: int = 3) -> Path:  # fmt: skip
    """Generate the toy dataset at ``root`` unless it is there, and return ``root``.

    Written to a temporary sibling folder and renamed in one step, so concurrent callers
    (workers, ranks, tests) see no folder or a complete one. An existing ``root`` must have
    been generated with the same parameters, else a ``ValueError`` names the difference.

    Args:
        root (str | os.PathLike): Dataset folder, e.g. ``'data/generated/toy_shapes'``.
        kind (str): ``'cls'`` (classification folders) or ``'ade'`` (ADE20K layout).
        image_size (int, optional): Image side, at least 16. Defaults to 64.
        num_train (int, optional): Training images. Defaults to 512 (cls) / 32 (ade).
        num_val (int, optional): Validation images. Defaults to 128 (cls) / 8 (ade).
        seed (int): Random seed. Defaults to 0.
        max_shapes (int): Most shapes per image for ``kind='ade'``. Defaults to 3.
    """
    if kind not in _KIND_CODE:
        raise ValueError(f"kind must be 'cls' or 'ade', got {kind!r}")
    given = (image_size, num_train, num_val)
    image_size, num_train, num_val = (
        int(d if v is None else v) for v, d in zip(given, _DEFAULTS[kind], strict=True)
    )
    if image_size < 16 or num_train < 1 or num_val < 1 or (kind == "ade" and int(max_shapes) < 1):
        raise ValueError(
            f"need image_size >= 16, num_train, num_val and max_shapes >= 1, got {image_size}, "
            f"{num_train}, {num_val}, {max_shapes}"
        )
    wanted = dict(kind=kind, generator_version=GENERATOR_VERSIONS[kind], image_size=image_size,
                  num_train=num_train, num_val=num_val, seed=int(seed),
                  classes=list(_KIND_CLASSES[kind]))  # fmt: skip
    if kind == "ade":
        wanted["max_shapes"] = int(max_shapes)
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
    diff = ", ".join(
        f"{k}: on disk {found.get(k)!r}, requested {v!r}"
        for k, v in wanted.items()
        if found.get(k) != v
    )
    if diff:
        raise ValueError(
            f"toy dataset at {root} was generated with other parameters ({diff}); "
            "delete the folder to regenerate it or choose another data_root"
        )
    return root
