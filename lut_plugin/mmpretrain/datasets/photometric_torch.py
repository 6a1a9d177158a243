"""View 2's photometric transforms on a batch of uint8 tensors, on any device.

The batched counterpart of :mod:`.photometric`: the same integer and float32/float64
arithmetic (so the same pixels as PIL), on ``(N, 3, H, W)`` uint8 BGR tensors with one
parameter per image, for ``LUTDataPreprocessor`` to distort view 2 on the GPU. Each
function takes and returns such a batch; ``factor`` arguments are ``(N,)`` tensors or
sequences of Python floats, drawn by ``LUTPhotometricParams``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import photometric

_LUMA_WEIGHTS = (7471, 38470, 19595)  # B, G, R: PIL's integer luma, (sum + 2**15) >> 16


def _per_image(values: Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 1, 1)`` float32 on ``like``'s device (rounded from float64 as ``np.float32``)."""
    values = torch.as_tensor(values, dtype=torch.float64).to(torch.float32)
    return values.to(like.device).view(-1, 1, 1, 1)


def _blend(degenerate: torch.Tensor, img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Pillow's float32 ``Image.blend``: ``in1 + alpha * (in2 - in1)``, clipped, truncated."""
    out = degenerate + factor * (img.to(torch.float32) - degenerate)
    return out.clamp_(0, 255).to(torch.uint8)


def luma(img: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert('L')`` of each image, ``(N, 1, H, W)`` int32."""
    weights = torch.tensor(_LUMA_WEIGHTS, dtype=torch.int32, device=img.device)
    total = (img.to(torch.int32) * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return (total + (1 << 15)) >> 16


def adjust_brightness(img: torch.Tensor, factor) -> torch.Tensor:
    """PIL's ``ImageEnhance.Brightness`` with one factor per image."""
    return _blend(torch.zeros((), device=img.device), img, _per_image(factor, img))


def adjust_contrast(img: torch.Tensor, factor) -> torch.Tensor:
    """PIL's ``ImageEnhance.Contrast``: blend with the rounded mean luma of each image."""
    y = luma(img)
    mean = y.sum((1, 2, 3), dtype=torch.int64).to(torch.float64) / y[0].numel()
    degenerate = torch.floor(mean + 0.5).to(torch.float32).view(-1, 1, 1, 1)
    return _blend(degenerate, img, _per_image(factor, img))


def adjust_saturation(img: torch.Tensor, factor) -> torch.Tensor:
    """PIL's ``ImageEnhance.Color``: blend each pixel with its luma."""
    return _blend(luma(img).to(torch.float32), img, _per_image(factor, img))


@functools.cache
def _hsv_tables(device: torch.device) -> dict[str, torch.Tensor]:
    """:func:`.photometric.hsv_tables` on ``device``, integer tables as int32."""
    tables = {k: torch.from_numpy(v.copy()) for k, v in photometric.hsv_tables().items()}
    tables = {k: v.int() if v.dtype == torch.uint8 else v for k, v in tables.items()}
    return {k: v.to(device) for k, v in tables.items()}


def adjust_hue(img: torch.Tensor, hue_factor) -> torch.Tensor:
    """torchvision's ``adjust_hue`` on PIL images: :func:`.photometric.adjust_hue` per image."""
    if not all(-0.5 <= float(h) <= 0.5 for h in hue_factor):
        raise ValueError(f"hue factors must lie in [-0.5, 0.5], got {list(hue_factor)}")
    shifts = torch.tensor([int(float(h) * 255) % 256 for h in hue_factor], dtype=torch.int32)
    tables = _hsv_tables(img.device)
    blue, green, red = img.to(torch.int32).unbind(1)
    # PIL's HSV (Pillow's rgb2hsv), from small tables
    hue = tables["hue"][(red - green + 255) * 511 + (green - blue + 255)]
    value = torch.maximum(torch.maximum(blue, green), red)
    chroma = value - torch.minimum(torch.minimum(blue, green), red)
    sat = tables["sat"][(chroma << 8) | value]
    # shift the hue (modulo 256), then Pillow's hsv2rgb: v, p and the third channel x, each
    # output channel taking the one its hue sector gives it
    hue = (hue + shifts.to(img.device).view(-1, 1, 1)) & 255
    x = (tables["x_scale"][(sat << 8) | hue] * value + 0.5).int()
    packed = (x << 16) | (tables["p"][(sat << 8) | value] << 8) | value
    return torch.stack([(packed >> shift[hue]) & 255 for shift in tables["shift"]], 1).byte()


def grayscale(img: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale(img, num_output_channels=3)`` on PIL images."""
    return luma(img).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def solarize(img: torch.Tensor, threshold=128) -> torch.Tensor:
    """PIL's ``ImageOps.solarize``: invert values >= ``threshold`` (one or one per image)."""
    threshold = torch.as_tensor(threshold, device=img.device).view(-1, 1, 1, 1)
    return torch.where(img >= threshold, 255 - img, img)


def gaussian_blur(img: torch.Tensor, radius) -> torch.Tensor:
    """PIL's ``GaussianBlur(radius)`` with one radius per image.

    Pillow's three box passes along x, then three along y, each with its 24-bit weights,
    edge pixels repeated and rounded to uint8: one depthwise convolution per pass in
    float64, exact for these sums (as :func:`.photometric.gaussian_blur`).
    """
    radii = [float(r) for r in radius]
    if any(r < 0 for r in radii):
        raise ValueError(f"blur radii must be non-negative, got {radii}")
    kernels = [photometric._pil_box_kernel(r)[0] if r > 0 else np.ones(1) for r in radii]
    half = max(len(k) for k in kernels) // 2
    weights = np.zeros((len(kernels), 2 * half + 1))
    for row, k in zip(weights, kernels, strict=True):
        row[half - len(k) // 2 : half + len(k) // 2 + 1] = k
    n, c, h, w = img.shape
    weights = torch.from_numpy(weights).to(img.device).repeat_interleave(c, 0)
    weights = weights.view(n * c, 1, 1, -1)
    half_grey = torch.full((n * c,), 0.5, dtype=torch.float64, device=img.device)
    out = img.to(torch.float64).view(1, n * c, h, w)
    for kernel, pad in [(weights, (half, half, 0, 0))] * 3 + [(weights.mT, (0, 0, half, half))] * 3:
        # Pillow's (sum + 2**23) >> 24: the convolution's bias adds the half
        out = F.conv2d(F.pad(out, pad, mode="replicate"), kernel, half_grey, groups=n * c)
        out = out.floor_()
    return out.view(n, c, h, w).to(torch.uint8)


_JITTER = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def distort(img: torch.Tensor, params: Sequence[dict]) -> torch.Tensor:
    """Distort each image with its own ``LUTPhotometricParams`` draw.

    Exactly ``LUTPhotometricDistortion.transform`` per image: the colour jitter's steps in
    the image's order, then its exclusive operation. Images that take the same operation at
    the same step are processed as one batch.

    Args:
        img (torch.Tensor): ``(N, 3, H, W)`` uint8 BGR images.
        params (Sequence[dict]): One ``LUTPhotometricParams`` draw per image.

    Returns:
        torch.Tensor: The distorted images (a new tensor).
    """
    if img.dtype != torch.uint8 or img.dim() != 4 or img.shape[1] != 3 or len(params) != len(img):
        raise ValueError(
            f"expected (N, 3, H, W) uint8 images with N parameter draws, got {img.dtype} "
            f"{tuple(img.shape)} and {len(params)} draws"
        )
    out = img.clone()

    def apply(rows: list[int], fn, args: list) -> None:
        if rows:
            index = torch.tensor(rows, device=img.device)
            out[index] = fn(out[index], args)

    jitter = [p["jitter"] for p in params]
    for step in range(4):
        for op, fn in enumerate(_JITTER):
            rows = [
                i for i, j in enumerate(jitter) if j and j[0][step] == op and j[1 + op] is not None
            ]
            apply(rows, fn, [jitter[i][1 + op] for i in rows])
    for name, fn, arg in (
        ("grayscale", lambda x, _: grayscale(x), None),
        ("solarize", solarize, "solarize_threshold"),
        ("blur", gaussian_blur, "blur_radius"),
    ):
        rows = [i for i, p in enumerate(params) if p["exclusive"] == name]
        apply(rows, fn, [params[i][arg] for i in rows] if arg else [])
    return out
