"""PIL's photometric transforms, pixel for pixel, on BGR uint8 arrays.

The reference two-view pipeline (torchvision on PIL images) jitters brightness, contrast,
saturation and hue with ``ImageEnhance`` and PIL's 8-bit HSV conversion, converts to
grayscale with PIL's ``'L'`` luma, solarizes with ``ImageOps.solarize`` and blurs with
``ImageFilter.GaussianBlur`` (three box passes per axis). The functions here compute the
same pixels from the BGR uint8 arrays of an mmpretrain pipeline without building PIL
images or float images:

* brightness, contrast, solarize: one 256-entry table through ``cv2.LUT``;
* saturation: PIL's float32 blend with the luma, in place;
* luma, grayscale and hue: per-colour tables over all 2**24 colours, built once per
  process (about 2 s, 112 MiB; with the ``fork`` start method data-loader workers share
  the parent's copy). PIL quantises hue to 256 steps, so a hue jitter cannot be
  approximated: one step off moves a saturated channel by up to 6 grey levels. The tables
  reproduce PIL's float arithmetic exactly, checked over all 2**24 colours;
* Gaussian blur: PIL's box radius (in PIL's float32 arithmetic) and its six rounded box
  passes, each one ``cv2.filter2D`` in float64.

Every function takes and returns a C-contiguous (H, W, 3) uint8 BGR array and matches PIL
(Pillow 9-13, as used by torchvision's functional transforms) exactly; the tests compare
them on natural-looking images.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

__all__ = [
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "colour_tables",
    "gaussian_blur",
    "grayscale",
    "luma",
    "solarize",
]

_F32 = np.float32


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


# ----------------------------------------------------------------- per-colour tables
def _rgb_to_pil_hsv(r: np.ndarray, g: np.ndarray, b: np.ndarray):
    """Pillow's ``rgb2hsv`` (Convert.c): float32 ratios, double fmod, truncation."""
    f64 = np.float64
    maxc = np.maximum(np.maximum(r, g), b)
    minc = np.minimum(np.minimum(r, g), b)
    grey = maxc == minc
    cr = np.where(grey, 1, maxc - minc).astype(_F32)
    rc = (maxc - r).astype(_F32) / cr
    gc = (maxc - g).astype(_F32) / cr
    bc = (maxc - b).astype(_F32) / cr
    r_max = r == maxc
    g_max = ~r_max & (g == maxc)
    h = np.where(
        r_max,
        bc - gc,
        np.where(
            g_max,
            (2.0 + rc.astype(f64) - bc).astype(_F32),
            (4.0 + gc.astype(f64) - rc).astype(_F32),
        ),
    )
    h = np.fmod(h.astype(f64) / 6.0 + 1.0, 1.0).astype(_F32)
    hue = np.clip((h.astype(f64) * 255.0).astype(np.int64), 0, 255)
    s = cr / np.maximum(maxc, 1).astype(_F32)
    sat = np.clip((s.astype(f64) * 255.0).astype(np.int64), 0, 255)
    hue[grey] = 0
    sat[grey] = 0
    return hue.astype(np.uint32), sat.astype(np.uint32), maxc.astype(np.uint32)


# Pillow's hsv2rgb: sector i = floor(6h/255) (6 wraps to 0) picks where v, p, q, t go.
_SECTOR_RGB = np.array([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]])


def _pil_hsv_to_bgr(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pillow's ``hsv2rgb`` (Convert.c) on uint8 arrays; returns (N, 3) BGR."""
    f64 = np.float64
    hf = h.astype(f64) * 6.0 / 255.0
    i = np.floor(hf)
    f = (hf - i).astype(_F32)
    fs = (s.astype(f64) / 255.0).astype(_F32)
    vf = v.astype(f64)
    # C round() of a non-negative double is floor(x + 0.5), and x + 0.5 is exact here.
    p = np.floor(vf * (1.0 - fs.astype(f64)) + 0.5)
    q = np.floor(vf * (1.0 - (fs * f).astype(f64)) + 0.5)
    t = np.floor(vf * (1.0 - fs.astype(f64) * (1.0 - f.astype(f64))) + 0.5)
    candidates = np.clip(np.stack([vf, p, q, t]), 0, 255).astype(np.uint8)
    order = _SECTOR_RGB[i.astype(np.int64) % 6]  # (N, 3) rows of R, G, B sources
    rgb = np.take_along_axis(candidates, order.T, axis=0).T
    rgb[s == 0] = v[s == 0, None]
    return np.ascontiguousarray(rgb[:, ::-1])


@functools.cache
def colour_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per-colour tables, built on first use and kept for the process.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``forward`` (2**24 uint32), indexed by the BGR
        colour ``b | g << 8 | r << 16``, holding PIL's ``v | s << 8 | h << 16 | L << 24``
        (HSV and luma); ``backward`` (2**24 x 3 uint8), indexed by ``v | s << 8 | h << 16``,
        holding PIL's HSV -> RGB conversion as BGR.
    """
    forward = np.empty(1 << 24, dtype=np.uint32)
    backward = np.empty((1 << 24, 3), dtype=np.uint8)
    hi, lo = np.divmod(np.arange(1 << 16, dtype=np.uint32), 256)
    hi8, lo8 = hi.astype(np.uint8), lo.astype(np.uint8)
    for top in range(256):
        rows = slice(top << 16, (top + 1) << 16)
        # forward: top = r, hi = g, lo = b
        r = np.full(1 << 16, top, dtype=np.uint8)
        hue, sat, val = _rgb_to_pil_hsv(r, hi8, lo8)
        luma24 = r.astype(np.uint32) * 19595 + hi * 38470 + lo * 7471 + 0x8000
        forward[rows] = val | sat << 8 | hue << 16 | (luma24 >> 16) << 24
        # backward: top = h, hi = s, lo = v
        backward[rows] = _pil_hsv_to_bgr(r, hi8, lo8)
    forward.flags.writeable = False
    backward.flags.writeable = False
    return forward, backward


def _forward(img: np.ndarray) -> np.ndarray:
    """``v | s << 8 | h << 16 | L << 24`` of every pixel, (H, W) uint32."""
    index = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA).view("<u4")[..., 0]
    index &= 0xFFFFFF
    return colour_tables()[0].take(index)


# ----------------------------------------------------------------- public functions
def luma(img: np.ndarray) -> np.ndarray:
    """PIL's ``convert('L')``: ``(19595 R + 38470 G + 7471 B + 2**15) >> 16``.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.

    Returns:
        np.ndarray: (H, W) uint8 luma.
    """
    return (_forward(_check(img)) >> 24).astype(np.uint8)


def grayscale(img: np.ndarray) -> np.ndarray:
    """torchvision's ``rgb_to_grayscale(img, num_output_channels=3)`` on a PIL image.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.

    Returns:
        np.ndarray: (H, W, 3) uint8, the luma in every channel.
    """
    return cv2.cvtColor(luma(img), cv2.COLOR_GRAY2BGR)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Brightness(img).enhance(factor)``.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        factor (float): 0 gives black, 1 the original image.

    Returns:
        np.ndarray: The adjusted image.
    """
    return cv2.LUT(_check(img), _blend_lut(0, factor))


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Contrast(img).enhance(factor)``.

    Blends with a flat image at the rounded mean luma.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        factor (float): 0 gives the flat mean-grey image, 1 the original image.

    Returns:
        np.ndarray: The adjusted image.
    """
    img = _check(img)
    mean = int(luma(img).mean(dtype=np.float64) + 0.5)
    return cv2.LUT(img, _blend_lut(mean, factor))


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Color(img).enhance(factor)``: blend with the image's luma.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        factor (float): 0 gives the grayscale image, 1 the original image.

    Returns:
        np.ndarray: The adjusted image.
    """
    img = _check(img)
    # Pillow's blend in float32, per pixel: in1 + alpha * (in2 - in1), clipped, truncated.
    grey = cv2.cvtColor(luma(img), cv2.COLOR_GRAY2BGR).astype(_F32)
    out = img.astype(_F32)
    out -= grey
    out *= _F32(factor)
    out += grey
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """torchvision's ``adjust_hue`` on a PIL image.

    PIL's 8-bit HSV image with the hue channel shifted by ``int(hue_factor * 255)``
    modulo 256, converted back to RGB. The HSV round trip is lossy, so even a zero shift
    changes some pixels, exactly as in torchvision.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        hue_factor (float): Shift in [-0.5, 0.5] of a full turn of the hue circle.

    Returns:
        np.ndarray: The adjusted image.
    """
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    img = _check(img)
    hsv = _forward(img)
    hsv += np.uint32((int(hue_factor * 255) % 256) << 16)  # a carry only reaches the luma
    hsv &= 0xFFFFFF
    return colour_tables()[1].take(hsv, axis=0)


def solarize(img: np.ndarray, threshold: int = 128) -> np.ndarray:
    """PIL's ``ImageOps.solarize(img, threshold)``: invert values >= ``threshold``.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        threshold (int): Values at or above it are inverted. Defaults to 128.

    Returns:
        np.ndarray: The solarized image.
    """
    values = np.arange(256)
    lut = np.where(values < threshold, values, 255 - values).astype(np.uint8)
    return cv2.LUT(_check(img), lut)


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

    Pillow approximates the Gaussian with three box passes along x, then three along y,
    each rounded to uint8 (``(sum + 2**23) >> 24`` with 24-bit weights, edge pixels
    repeated). Each pass here is one ``cv2.filter2D`` in float64 (exact for these sums)
    with the same weights, border and rounding.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image.
        radius (float): Standard deviation of the Gaussian, in pixels.

    Returns:
        np.ndarray: The blurred image.
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
