"""View 2's photometric operations on (H, W, 3) uint8 BGR arrays, pixel for pixel as
torchvision's on PIL images (``ImageEnhance``, PIL's 8-bit HSV and integer luma,
``ImageOps.solarize``, ``ImageFilter.GaussianBlur``), from lookup tables and OpenCV without
PIL images; ``tests/test_transforms.py`` checks them against torchvision. Each returns a new
image.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from PIL import Image

_F32 = np.float32
LUMA_BGR = (7471, 38470, 19595)  # PIL's luma: (19595 R + 38470 G + 7471 B + 2**15) >> 16
# on a float32 BGR image: exact (multiples of 2**-16 below 256), so truncating is ">> 16"
_LUMA = np.array([[*LUMA_BGR, 32768]], dtype=_F32) / 65536
# Which of v, p and the third channel x go to B, G, R in each hue sector (Pillow's hsv2rgb).
_SECTOR_BGR = np.array([[1, 2, 0], [1, 0, 2], [2, 0, 1], [0, 2, 1], [0, 1, 2], [2, 1, 0]])


def _check(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise TypeError(f"expected a (H, W, 3) uint8 BGR image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)


def _blend_lut(degenerate: int, factor: float) -> np.ndarray:
    """Pillow's float32 ``Image.blend(flat degenerate, image, factor)`` as a 256-entry table:
    ``in1 + alpha * (in2 - in1)``, clipped, truncated."""
    out = _F32(degenerate) + _F32(factor) * (np.arange(256, dtype=_F32) - _F32(degenerate))
    return np.clip(out, 0, 255).astype(np.uint8)


def pil_convert(pixels: np.ndarray, mode: str, out: str) -> np.ndarray:
    """Pillow's conversion of (N, 3) uint8 pixels from ``mode`` (e.g. ``'RGB'``) to ``out``."""
    img = Image.frombytes(mode, (len(pixels), 1), np.ascontiguousarray(pixels, np.uint8).tobytes())
    return np.asarray(img.convert(out)).reshape(-1, 3)


@functools.cache
def hsv_tables() -> dict[str, np.ndarray]:
    """Small tables (about 1 MiB) that give Pillow's 8-bit HSV conversions exactly.

    ``hue`` by ``(r - g + 255) * 511 + (g - b + 255)`` (PIL's hue depends on nothing else);
    ``sat`` by ``(max - min) << 8 | max``; ``p = round(v (1 - s / 255))`` by ``s << 8 | v``;
    ``x_scale`` by ``s << 8 | h``: ``round(v * x_scale)`` is the third channel (Pillow's
    ``q`` or ``t``); ``shift``: per B, G, R, 8 x the index (0: v, 1: p, 2: x) of the value
    in that channel in the hue's sector.
    """
    # hue by (r - g, g - b): the colour with these differences and min(r, g, b) = 0
    a, d = np.meshgrid(np.arange(-255, 256), np.arange(-255, 256), indexing="ij")
    g = np.maximum(np.maximum(-a, 0), d)
    rgb = np.stack([g + a, g, g - d], -1).reshape(-1, 3)
    valid = rgb.max(1) <= 255
    hue = np.zeros(511 * 511, dtype=np.uint8)
    hue[valid] = pil_convert(rgb[valid], "RGB", "HSV")[:, 0]
    # saturation by (max - min, max): the colour (max, min, min)
    cr, maxc = np.divmod(np.arange(1 << 16), 256)
    ok = cr <= maxc
    sat = np.zeros(1 << 16, dtype=np.uint8)
    sat[ok] = pil_convert(np.stack([maxc, maxc - cr, maxc - cr], -1)[ok], "RGB", "HSV")[:, 1]
    # p by (s, v): the blue of (h = 0, s, v)
    p = pil_convert(np.insert(np.stack([cr, maxc], -1), 0, 0, axis=1), "HSV", "RGB")[:, 2]
    # the third value's scale, in Pillow's hsv2rgb float/double arithmetic
    h8 = np.arange(256, dtype=np.float64)
    i = np.floor(h8 * 6.0 / 255.0)
    f = (h8 * 6.0 / 255.0 - i).astype(_F32)
    fs = (h8 / 255.0).astype(_F32)
    q_scale = 1.0 - (fs[:, None] * f[None, :]).astype(np.float64)
    t_scale = 1.0 - fs.astype(np.float64)[:, None] * (1.0 - f.astype(np.float64))[None, :]
    sector = i.astype(np.int64) % 6
    x_scale = np.where(sector[None, :] % 2 == 1, q_scale, t_scale)
    shift = (8 * _SECTOR_BGR[sector].T).astype(np.uint8)
    tables = dict(hue=hue, sat=sat, p=p, x_scale=x_scale.ravel(), shift=shift)
    for table in tables.values():
        table.flags.writeable = False
    return tables


def luma(img: np.ndarray) -> np.ndarray:
    """PIL's ``convert('L')``, (H, W) uint8."""
    return cv2.transform(_check(img).astype(_F32), _LUMA).astype(np.uint8)


def grayscale(img: np.ndarray) -> np.ndarray:
    """torchvision's ``rgb_to_grayscale(img, num_output_channels=3)``."""
    return cv2.cvtColor(luma(img), cv2.COLOR_GRAY2BGR)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Brightness(img).enhance(factor)``."""
    return cv2.LUT(_check(img), _blend_lut(0, factor))


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Contrast(img).enhance(factor)``: blend with the mean luma."""
    mean = int(luma(img).mean(dtype=np.float64) + 0.5)
    return cv2.LUT(_check(img), _blend_lut(mean, factor))


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Color(img).enhance(factor)``: per pixel, blend with its luma."""
    out = _check(img).astype(_F32)
    grey = cv2.cvtColor(np.floor(cv2.transform(out, _LUMA)), cv2.COLOR_GRAY2BGR)
    out -= grey
    out *= _F32(factor)
    out += grey
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """torchvision's ``adjust_hue`` on a PIL image, ``hue_factor`` in [-0.5, 0.5]: PIL's
    8-bit HSV, the hue shifted by ``int(hue_factor * 255)`` modulo 256, back to RGB (lossy
    even for a zero shift, as in PIL)."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    tables = hsv_tables()
    blue, green, red = cv2.split(_check(img))
    # Pillow's rgb2hsv from the tables
    r_g = cv2.subtract(red, green, dtype=cv2.CV_32S)
    r_g *= 511
    r_g += cv2.subtract(green, blue, dtype=cv2.CV_32S)
    r_g += 255 * 511 + 255
    hue = tables["hue"].take(r_g)
    value = cv2.max(cv2.max(blue, green), red)
    sv = cv2.subtract(value, cv2.min(cv2.min(blue, green), red)).astype(np.uint16)
    sv <<= 8
    sv |= value
    sat = tables["sat"].take(sv)
    # shift the hue (modulo 256), then Pillow's hsv2rgb
    hue += np.uint8(int(hue_factor * 255) % 256)
    sv = sat.astype(np.uint16)
    sv <<= 8
    sh = sv | hue
    sv |= value
    x = tables["x_scale"].take(sh)
    x *= value
    x += 0.5
    # pack (v, p, x) into bytes 0, 1, 2; each output channel shifts out its byte
    packed = x.astype(np.uint32)
    packed <<= 8
    packed |= tables["p"].take(sv)
    packed <<= 8
    packed |= value
    return cv2.merge([(packed >> cv2.LUT(hue, s)).astype(np.uint8) for s in tables["shift"]])


def solarize(img: np.ndarray, threshold: int = 128) -> np.ndarray:
    """PIL's ``ImageOps.solarize(img, threshold)``: invert values >= ``threshold``."""
    values = np.arange(256, dtype=np.uint8)
    return cv2.LUT(_check(img), np.where(values < threshold, values, 255 - values))


def box_kernel(radius: float) -> np.ndarray:
    """One of the six box passes of PIL's ``GaussianBlur(radius)``: a (2r + 3,) float64
    kernel of Pillow's 24-bit weights, from its box radius (BoxBlur.c, float32)."""
    f = _F32
    sigma2 = f(f(radius) * f(radius) / f(3))
    whole = f(math.floor((float(f(math.sqrt(12.0 * float(sigma2) + 1.0))) - 1.0) / 2.0))
    a = f(f(2) * whole + f(1)) * f(whole * (whole + f(1)) - f(3) * sigma2)
    box = f(whole + f(a / f(f(6) * f(sigma2 - (whole + f(1)) * (whole + f(1))))))
    inner = int(f(f(1 << 24) / f(box * f(2) + f(1))))
    edge = ((1 << 24) - (int(box) * 2 + 1) * inner) // 2
    return np.array([edge] + [inner] * (2 * int(box) + 1) + [edge], np.float64) / (1 << 24)


def gaussian_blur(img: np.ndarray, radius: float) -> np.ndarray:
    """PIL's ``img.filter(ImageFilter.GaussianBlur(radius))``: three box passes along x,
    three along y, each rounded as Pillow's ``(sum + 2**23) >> 24`` with edge pixels
    repeated (``cv2.filter2D`` in float64 is exact for these sums)."""
    img = _check(img)
    if radius < 0:
        raise ValueError(f"radius ({radius}) must be non-negative")
    if radius == 0:
        return img.copy()
    k = box_kernel(radius)[None]
    for kernel in (k, k, k, k.T, k.T, k.T):
        img = cv2.filter2D(img, cv2.CV_64F, kernel, delta=0.5, borderType=cv2.BORDER_REPLICATE)
        img = img.astype(np.uint8)  # truncating x + 0.5 rounds half up, like Pillow
    return img


_JITTER = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def distort(img: np.ndarray, params: dict) -> np.ndarray:
    """Apply one ``LUTPhotometricDistortion.random_params()`` draw: the jitter's steps in
    their drawn order, then the exclusive operation.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        params (dict): ``jitter``, ``exclusive``, ``blur_radius``, ``solarize_threshold``.
    """
    if params["jitter"] is not None:
        order, *factors = params["jitter"]
        for index in order:
            if factors[index] is not None:
                img = _JITTER[index](img, factors[index])
    if params["exclusive"] == "grayscale":
        return grayscale(img)
    if params["exclusive"] == "solarize":
        return solarize(img, params["solarize_threshold"])
    return gaussian_blur(img, params["blur_radius"])
