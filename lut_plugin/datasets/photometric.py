"""View 2's photometric operations, pixel for pixel as PIL's, on BGR uint8 arrays.

torchvision on PIL images (the reference pipeline) jitters brightness, contrast and
saturation with ``ImageEnhance``, hue through PIL's 8-bit HSV, converts to grayscale with
PIL's integer luma, solarizes with ``ImageOps.solarize`` and blurs with
``ImageFilter.GaussianBlur`` (three box passes per axis). The same pixels here come from
lookup tables and OpenCV, without PIL images: 256-entry tables for brightness, contrast
and solarize; PIL's luma, exact with ``cv2.transform`` in float32; PIL's float32 blend for
saturation; for hue (PIL quantises it to 256 steps, one step off moves a channel by up to
6 grey levels) small tables that reproduce Pillow's HSV arithmetic exactly on all 2**24
colours (:func:`hsv_tables`); for the blur, PIL's box radius and its six rounded box
passes, each a ``cv2.filter2D`` in float64. Every function takes a (H, W, 3) uint8 BGR
image and returns a new one; ``tests/test_transforms.py`` checks them against torchvision
on PIL images.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from PIL import Image

_F32 = np.float32
# PIL's luma (19595 R + 38470 G + 7471 B + 2**15) / 2**16 on a BGR float32 image: exact in
# float32 (multiples of 2**-16 below 256), so truncating it is Pillow's ">> 16".
_LUMA_BGR = np.array([[7471, 38470, 19595, 32768]], dtype=_F32) / 65536


def _check(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise TypeError(f"expected a (H, W, 3) uint8 BGR image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)


def _blend_lut(degenerate: int, factor: float) -> np.ndarray:
    """PIL's ``Image.blend(flat image of degenerate, image, factor)`` as a 256-entry table.

    Pillow computes ``in1 + alpha * (in2 - in1)`` in float32, clips to [0, 255] and
    truncates.
    """
    values = np.arange(256, dtype=_F32)
    out = _F32(degenerate) + _F32(factor) * (values - _F32(degenerate))
    return np.clip(out, 0, 255).astype(np.uint8)


def pil_convert(pixels: np.ndarray, mode: str, out: str) -> np.ndarray:
    """Pillow's conversion of (N, 3) uint8 pixels from ``mode`` (e.g. ``'RGB'``) to ``out``."""
    img = Image.frombytes(mode, (len(pixels), 1), np.ascontiguousarray(pixels, np.uint8).tobytes())
    return np.asarray(img.convert(out)).reshape(-1, 3)


# Which of v, p and the third channel x go to B, G, R in each hue sector (Pillow's hsv2rgb).
_SECTOR_BGR = np.array([[1, 2, 0], [1, 0, 2], [2, 0, 1], [0, 2, 1], [0, 1, 2], [2, 1, 0]])


@functools.cache
def hsv_tables() -> dict[str, np.ndarray]:
    """Small tables (about 1 MiB) that reproduce Pillow's 8-bit HSV conversions exactly.

    Built once per process from Pillow's conversions and its ``hsv2rgb`` formulas, in
    Pillow's float32/float64 arithmetic.

    Returns:
        dict[str, np.ndarray]:

        - ``hue`` (511 * 511 uint8): PIL's hue, which depends on the colour only through
          ``(r - g, g - b)``, indexed by ``(r - g + 255) * 511 + (g - b + 255)``;
        - ``sat`` (256 * 256 uint8): PIL's saturation, indexed by ``(max - min) << 8 | max``;
        - ``p`` (256 * 256 uint8): ``round(v (1 - s / 255))``, indexed by ``s << 8 | v``;
        - ``x_scale`` (256 * 256 float64): ``1 - fs f`` (odd sectors, Pillow's ``q``) or
          ``1 - fs (1 - f)`` (even sectors, ``t``), indexed by ``s << 8 | h``, so that
          ``round(v * x_scale)`` is the third channel;
        - ``shift`` (3 x 256 uint8): for B, G and R, 8 times the index (0: v, 1: p, 2: x)
          of the value that Pillow puts there in the hue's sector ``floor(6 h / 255) % 6``.
    """
    f64 = np.float64
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
    s_v = np.stack(np.divmod(np.arange(1 << 16), 256), -1)
    p = pil_convert(np.insert(s_v, 0, 0, axis=1), "HSV", "RGB")[:, 2]
    # the third value's scale, in Pillow's hsv2rgb float/double arithmetic
    h8 = np.arange(256, dtype=f64)
    i = np.floor(h8 * 6.0 / 255.0)
    f = (h8 * 6.0 / 255.0 - i).astype(_F32)
    fs = (np.arange(256, dtype=f64) / 255.0).astype(_F32)
    q_scale = 1.0 - (fs[:, None] * f[None, :]).astype(f64)
    t_scale = 1.0 - fs.astype(f64)[:, None] * (1.0 - f.astype(f64))[None, :]
    sector = i.astype(np.int64) % 6
    x_scale = np.where(sector[None, :] % 2 == 1, q_scale, t_scale)
    shift = (8 * _SECTOR_BGR[sector].T).astype(np.uint8)
    tables = dict(hue=hue, sat=sat, p=p, x_scale=x_scale.ravel(), shift=shift)
    for table in tables.values():
        table.flags.writeable = False
    return tables


def luma(img: np.ndarray) -> np.ndarray:
    """PIL's ``convert('L')``, (H, W) uint8: ``(19595 R + 38470 G + 7471 B + 2**15) >> 16``."""
    return cv2.transform(_check(img).astype(_F32), _LUMA_BGR).astype(np.uint8)


def grayscale(img: np.ndarray) -> np.ndarray:
    """torchvision's ``rgb_to_grayscale(img, num_output_channels=3)``: the luma thrice."""
    return cv2.cvtColor(luma(img), cv2.COLOR_GRAY2BGR)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Brightness(img).enhance(factor)``."""
    return cv2.LUT(_check(img), _blend_lut(0, factor))


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Contrast(img).enhance(factor)``: blend with the mean luma."""
    img = _check(img)
    mean = int(luma(img).mean(dtype=np.float64) + 0.5)
    return cv2.LUT(img, _blend_lut(mean, factor))


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Color(img).enhance(factor)``: blend with the image's luma."""
    img = _check(img)
    # Pillow's blend in float32, per pixel: in1 + alpha * (in2 - in1), clipped, truncated.
    out = img.astype(_F32)
    grey = cv2.cvtColor(np.floor(cv2.transform(out, _LUMA_BGR)), cv2.COLOR_GRAY2BGR)
    out -= grey
    out *= _F32(factor)
    out += grey
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """torchvision's ``adjust_hue`` on a PIL image, ``hue_factor`` in [-0.5, 0.5].

    PIL's 8-bit HSV with the hue shifted by ``int(hue_factor * 255)`` modulo 256, back to
    RGB; the round trip is lossy, so even a zero shift changes some pixels, as in PIL.
    """
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    tables = hsv_tables()
    blue, green, red = cv2.split(_check(img))
    # PIL's HSV (Pillow's rgb2hsv), from small tables
    r_g = cv2.subtract(red, green, dtype=cv2.CV_32S)
    r_g *= 511
    r_g += cv2.subtract(green, blue, dtype=cv2.CV_32S)
    r_g += 255 * 511 + 255
    hue = tables["hue"].take(r_g)
    value = cv2.max(cv2.max(blue, green), red)
    chroma = cv2.subtract(value, cv2.min(cv2.min(blue, green), red))
    sv = chroma.astype(np.uint16)
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
    planes = [(packed >> cv2.LUT(hue, shift)).astype(np.uint8) for shift in tables["shift"]]
    return cv2.merge(planes)


def solarize(img: np.ndarray, threshold: int = 128) -> np.ndarray:
    """PIL's ``ImageOps.solarize(img, threshold)``: invert values >= ``threshold``."""
    return cv2.LUT(_check(img), _solarize_table(threshold))


@functools.cache
def _solarize_table(threshold: int) -> np.ndarray:
    values = np.arange(256)
    return np.where(values < threshold, values, 255 - values).astype(np.uint8)


def _pil_box_radius(radius: float, passes: int = 3) -> float:
    """Pillow's ``_gaussian_blur_radius`` (BoxBlur.c), in its float32 arithmetic."""
    sigma2 = _F32(_F32(radius) * _F32(radius) / _F32(passes))
    length = _F32(math.sqrt(12.0 * float(sigma2) + 1.0))
    whole = _F32(math.floor((float(length) - 1.0) / 2.0))
    a = _F32(_F32(2) * whole + _F32(1)) * _F32(whole * (whole + _F32(1)) - _F32(3) * sigma2)
    a = _F32(a / _F32(_F32(6) * _F32(sigma2 - (whole + _F32(1)) * (whole + _F32(1)))))
    return _F32(whole + a)


def _pil_box_kernel(radius: float) -> np.ndarray:
    """One pass of Pillow's box blur as a (1, 2r + 3) float64 kernel of its 24-bit weights."""
    box = _pil_box_radius(radius)
    whole = int(box)
    inner = int(_F32(_F32(1 << 24) / _F32(box * _F32(2) + _F32(1))))
    edge = ((1 << 24) - (whole * 2 + 1) * inner) // 2
    weights = [edge] + [inner] * (2 * whole + 1) + [edge]
    return (np.array(weights, dtype=np.float64) / (1 << 24)).reshape(1, -1)


def gaussian_blur(img: np.ndarray, radius: float) -> np.ndarray:
    """PIL's ``img.filter(ImageFilter.GaussianBlur(radius))``.

    Three box passes along x, then three along y, each rounded to uint8 as Pillow's
    ``(sum + 2**23) >> 24`` with its 24-bit weights and repeated edge pixels: one
    ``cv2.filter2D`` per pass in float64, exact for these sums.
    """
    img = _check(img)
    if radius == 0:
        return img.copy()
    if radius < 0:
        raise ValueError(f"radius ({radius}) must be non-negative")
    kernel = _pil_box_kernel(radius)
    out = img
    for k in (kernel, kernel, kernel, kernel.T, kernel.T, kernel.T):
        out = cv2.filter2D(out, cv2.CV_64F, k, delta=0.5, borderType=cv2.BORDER_REPLICATE)
        out = out.astype(np.uint8)  # truncating x + 0.5 rounds half up, like Pillow
    return out


_JITTER = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def distort(img: np.ndarray, params: dict) -> np.ndarray:
    """Apply one ``LUTPhotometricDistortion`` draw to a BGR uint8 image.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        params (dict): ``jitter`` (None or ``(order, brightness, contrast, saturation,
            hue)``), ``exclusive``, ``blur_radius`` and ``solarize_threshold``.

    Returns:
        np.ndarray: The jitter's steps in their drawn order, then the exclusive operation.
    """
    img = np.ascontiguousarray(img)
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
