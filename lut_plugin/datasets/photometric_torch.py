"""View 2's photometric operations on ``(N, 3, H, W)`` uint8 BGR batches on any device, one
parameter per image, in :mod:`.photometric`'s arithmetic (so PIL's pixels). On the GPU they
relieve the DataLoader workers (``LUTDataPreprocessor``; measured in docs/results/speed.md);
on a CPU they are slower than :mod:`.photometric` in the workers.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import photometric


def _per_image(values: Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 1, 1)`` float32 on ``like``'s device (rounded from float64 as ``np.float32``)."""
    values = torch.as_tensor(values, dtype=torch.float64).to(torch.float32)
    return values.to(like.device).view(-1, 1, 1, 1)


def _blend(degenerate: torch.Tensor, img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Pillow's float32 ``Image.blend``: ``in1 + alpha * (in2 - in1)``, clipped, truncated."""
    out = degenerate + factor * (img.to(torch.float32) - degenerate)
    return out.clamp_(0, 255).to(torch.uint8)


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for int32 indices (advanced indexing would convert them to int64)."""
    return table.index_select(0, index.view(-1)).view(index.shape)


def _blend_with_constant(img: torch.Tensor, degenerate: torch.Tensor,
                         factor: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """:func:`_blend` with one grey level per image, as one 256-entry table per image (one
    lookup instead of a chain of float32 passes over the pixels)."""
    values = torch.arange(256, dtype=torch.float32, device=img.device)
    tables = _blend(degenerate.view(-1, 1), values, factor.view(-1, 1))
    starts = torch.arange(0, 256 * len(img), 256, dtype=torch.int32, device=img.device)
    return _lookup(tables.view(-1), img + starts.view(-1, 1, 1, 1))


def luma(img: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert('L')`` of each image, ``(N, 1, H, W)`` int32."""
    weights = torch.tensor(photometric.LUMA_BGR, dtype=torch.int32, device=img.device)
    total = (img * weights.view(1, 3, 1, 1)).sum(1, keepdim=True, dtype=torch.int32)
    return (total + (1 << 15)) >> 16


def adjust_brightness(img: torch.Tensor, factor) -> torch.Tensor:
    """PIL's ``ImageEnhance.Brightness`` with one factor per image."""
    black = torch.zeros(len(img), device=img.device)
    return _blend_with_constant(img, black, _per_image(factor, img))


def adjust_contrast(img: torch.Tensor, factor) -> torch.Tensor:
    """PIL's ``ImageEnhance.Contrast``: blend with the rounded mean luma of each image."""
    y = luma(img)
    mean = y.sum((1, 2, 3), dtype=torch.int64).to(torch.float64) / y[0].numel()
    degenerate = torch.floor(mean + 0.5).to(torch.float32)
    return _blend_with_constant(img, degenerate, _per_image(factor, img))


def adjust_saturation(img: torch.Tensor, factor) -> torch.Tensor:
    """PIL's ``ImageEnhance.Color``: blend each pixel with its luma."""
    return _blend(luma(img).to(torch.float32), img, _per_image(factor, img))


@functools.cache
def _hue_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pillow's HSV conversions of all 2**24 colours as int32 tables on ``device`` (64 MiB
    each): ``b | g << 8 | r << 16`` -> ``h << 16 | s << 8 | v`` and back."""
    if sys.byteorder != "little":  # adjust_hue reads four bytes as one int32
        raise RuntimeError("the batched hue shift needs a little-endian machine")
    # code i as a pixel: its bytes 2, 1, 0 are (r, g, b) for to_hsv and (h, s, v) for to_bgr
    code = np.arange(1 << 24, dtype=np.uint32).view(np.uint8).reshape(-1, 4)[:, 2::-1]
    tables = []
    for mode, out in (("RGB", "HSV"), ("HSV", "RGB")):
        a, b, c = photometric.pil_convert(code, mode, out).astype(np.int32).T
        tables.append(torch.from_numpy((a << 16) | (b << 8) | c).to(device))
    return tables[0], tables[1]


def adjust_hue(img: torch.Tensor, hue_factor) -> torch.Tensor:
    """:func:`.photometric.adjust_hue` per image: each pixel, packed into an int32, looked up
    in Pillow's HSV, its hue shifted modulo 256 and looked up back."""
    if not all(-0.5 <= float(h) <= 0.5 for h in hue_factor):
        raise ValueError(f"hue factors must lie in [-0.5, 0.5], got {list(hue_factor)}")
    shifts = [(int(float(h) * 255) % 256) << 16 for h in hue_factor]
    shifts = torch.tensor(shifts, dtype=torch.int32, device=img.device).view(-1, 1, 1)
    to_hsv, to_bgr = _hue_tables(img.device)
    n, _, h, w = img.shape
    # B, G, R and a zero byte per pixel, read as one little-endian int32: b | g << 8 | r << 16
    bgr0 = img.new_zeros(n, h, w, 4)
    bgr0[..., :3] = img.permute(0, 2, 3, 1)
    hsv = (_lookup(to_hsv, bgr0.view(torch.int32).squeeze(-1)) + shifts) & 0xFFFFFF
    bgr0 = _lookup(to_bgr, hsv).view(torch.uint8).view(n, h, w, 4)
    return bgr0[..., :3].permute(0, 3, 1, 2).contiguous()


def grayscale(img: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale(img, num_output_channels=3)`` on PIL images."""
    return luma(img).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def solarize(img: torch.Tensor, threshold=128) -> torch.Tensor:
    """PIL's ``ImageOps.solarize``: invert values >= ``threshold`` (one or one per image)."""
    threshold = torch.as_tensor(threshold, device=img.device).view(-1, 1, 1, 1)
    return torch.where(img >= threshold, 255 - img, img)


def gaussian_blur(img: torch.Tensor, radius) -> torch.Tensor:
    """PIL's ``GaussianBlur(radius)`` with one radius per image: Pillow's six box passes as
    depthwise float64 convolutions, exact for these sums (on CUDA PyTorch runs float64
    depthwise convolutions below 2**31 elements with its own direct kernel)."""
    radii = [float(r) for r in radius]
    if any(r < 0 for r in radii):
        raise ValueError(f"blur radii must be non-negative, got {radii}")
    kernels = [photometric.box_kernel(r) if r > 0 else np.ones(1) for r in radii]
    half = max(len(k) for k in kernels) // 2
    weights = np.zeros((len(kernels), 2 * half + 1))
    for row, k in zip(weights, kernels, strict=True):
        row[half - len(k) // 2 : half + len(k) // 2 + 1] = k
    n, c, h, w = img.shape
    weights = torch.from_numpy(weights).to(img.device).repeat_interleave(c, 0)
    # Repeating the edge pixels = zero padding + each edge pixel times the kernel's weights
    # that fall outside the image at that distance from the edge (exact sums in float64).
    outside_low = weights.cumsum(1)[:, :half].flip(1)
    outside_high = weights.flip(1).cumsum(1)[:, :half]
    half_grey = torch.full((n * c,), 0.5, dtype=torch.float64, device=img.device)
    out = img.to(torch.float64).view(1, n * c, h, w)
    for dim in (3, 3, 3, 2, 2, 2):
        size, edge = out.shape[dim], min(half, out.shape[dim])
        along = [1, n * c, 1, 1]
        along[dim] = -1
        kernel = weights.view(n * c, 1, *along[2:])
        padding = (0, half) if dim == 3 else (half, 0)
        # Pillow's (sum + 2**23) >> 24: the convolution's bias adds the half
        new = F.conv2d(out, kernel, half_grey, padding=padding, groups=n * c)
        low = outside_low[:, :edge].reshape(along)
        high = outside_high[:, half - edge :].reshape(along)
        new.narrow(dim, 0, edge).add_(out.narrow(dim, 0, 1) * low)
        new.narrow(dim, size - edge, edge).add_(out.narrow(dim, size - 1, 1) * high)
        out = new.floor_()
    return out.view(n, c, h, w).to(torch.uint8)


_JITTER = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def distort(img: torch.Tensor, params: Sequence[dict]) -> torch.Tensor:
    """``LUTPhotometricDistortion.transform`` per image, with each image's own
    ``LUTPhotometricParams`` draw; images that take the same operation at the same step are
    processed as one batch.

    Args:
        img (torch.Tensor): ``(N, 3, H, W)`` uint8 BGR images.
        params (Sequence[dict]): One draw per image.
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
