"""Transforms that mmpretrain lacks for the LUT two-view pipeline."""

from __future__ import annotations

import math

import mmcv
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter, RandomCrop
from mmpretrain.registry import TRANSFORMS
from PIL import Image, ImageEnhance


@TRANSFORMS.register_module()
class PaddedRandomCrop(RandomCrop):
    """Random crop whose border ``padding`` honours ``padding_mode``.

    mmpretrain's :class:`RandomCrop` always fills its ``padding`` border with the constant
    ``pad_val`` and uses ``padding_mode`` only for ``pad_if_needed``. This transform pads
    with ``padding_mode`` in both places, which is what torchvision's
    ``RandomCrop(size, padding=4, padding_mode='reflect')`` does: pad every border, then
    crop ``crop_size`` at a uniformly random offset.

    **Required Keys:**

    - img

    **Modified Keys:**

    - img
    - img_shape

    Args:
        crop_size (int | Sequence[int]): Output size ``(h, w)`` or one int for a square.
        padding (int | Sequence[int], optional): Border padding applied before cropping;
            4 values are left, top, right, bottom; 2 values are left/right, top/bottom.
            Defaults to None (no padding).
        pad_if_needed (bool): Also pad when the image is smaller than ``crop_size``.
            Defaults to False.
        pad_val (int | float | Sequence): Fill value for ``padding_mode='constant'``.
            Defaults to 0.
        padding_mode (str): ``'constant'``, ``'edge'``, ``'reflect'`` (no repeat of the
            edge pixel, like ``np.pad(mode='reflect')``) or ``'symmetric'``.
            Defaults to ``'reflect'``.
    """

    def __init__(
        self,
        crop_size: int | tuple[int, int],
        padding: int | tuple[int, ...] | None = None,
        pad_if_needed: bool = False,
        pad_val: int | float | tuple = 0,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__(
            crop_size=crop_size,
            padding=padding,
            pad_if_needed=pad_if_needed,
            pad_val=pad_val,
            padding_mode=padding_mode,
        )

    def transform(self, results: dict) -> dict:
        """Pad with ``padding_mode``, then crop at a random offset.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict with the cropped ``img`` and its ``img_shape``.
        """
        img = results["img"]
        if self.padding is not None:
            img = mmcv.impad(
                img, padding=self.padding, pad_val=self.pad_val, padding_mode=self.padding_mode
            )
        if self.pad_if_needed:
            h_pad = math.ceil(max(0, self.crop_size[0] - img.shape[0]) / 2)
            w_pad = math.ceil(max(0, self.crop_size[1] - img.shape[1]) / 2)
            img = mmcv.impad(
                img,
                padding=(w_pad, h_pad, w_pad, h_pad),
                pad_val=self.pad_val,
                padding_mode=self.padding_mode,
            )
        offset_h, offset_w, target_h, target_w = self.rand_crop_params(img)
        img = mmcv.imcrop(
            img,
            np.array([offset_w, offset_h, offset_w + target_w - 1, offset_h + target_h - 1]),
        )
        results["img"] = img
        results["img_shape"] = img.shape[:2]
        return results


def _adjust_hue_pil(img: Image.Image, hue_factor: float) -> Image.Image:
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    np_h += np.uint8(int(hue_factor * 255) % 256)  # array arithmetic wraps modulo 256
    return Image.merge("HSV", (Image.fromarray(np_h), s, v)).convert(img.mode)


def _to_pil(img: np.ndarray) -> Image.Image:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise TypeError(f"expected a (H, W, 3) uint8 image, got {img.dtype} {img.shape}")
    return Image.fromarray(np.ascontiguousarray(img[..., ::-1]))


def _from_pil(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[..., ::-1])


def adjust_hue_bgr(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """Shift the hue of a BGR uint8 image like torchvision's PIL ``adjust_hue``.

    The hue channel of PIL's HSV image is shifted by ``int(hue_factor * 255)`` modulo 256.
    mmcv 2.1's ``adjust_hue`` computes ``np.uint8(hue_factor * 255)``, which raises
    ``OverflowError`` under numpy 2 for every negative shift.

    Args:
        img (np.ndarray): (H, W, 3) uint8 image in BGR order.
        hue_factor (float): Shift in [-0.5, 0.5] of a full turn of the hue circle.

    Returns:
        np.ndarray: The adjusted BGR image.
    """
    return _from_pil(_adjust_hue_pil(_to_pil(img), hue_factor))


@TRANSFORMS.register_module()
class PILColorJitter(ColorJitter):
    """mmpretrain's :class:`ColorJitter` computed with PIL like torchvision, numpy-2 safe.

    Same random factors and random order as upstream (and torchvision); brightness,
    contrast and saturation use PIL's ``ImageEnhance`` (as mmcv's ``'pillow'`` backend
    does), hue uses torchvision's modular shift of PIL's HSV hue channel. Upstream's hue
    step (mmcv 2.1 ``adjust_hue``) raises ``OverflowError`` with numpy 2 whenever the
    drawn hue factor is negative. The image is converted to PIL once per call.

    **Required Keys:**

    - img (BGR, uint8)

    **Modified Keys:**

    - img

    Args:
        brightness (float | Sequence[float]): Factor drawn from
            ``[max(0, 1 - brightness), 1 + brightness]`` or the given range. Defaults to 0.
        contrast (float | Sequence[float]): As ``brightness``, for contrast. Defaults to 0.
        saturation (float | Sequence[float]): As ``brightness``, for saturation.
            Defaults to 0.
        hue (float | Sequence[float]): Hue shift drawn from ``[-hue, hue]`` (``hue`` <= 0.5)
            or the given range. Defaults to 0.
    """

    def __init__(
        self,
        brightness: float | tuple[float, float] = 0.0,
        contrast: float | tuple[float, float] = 0.0,
        saturation: float | tuple[float, float] = 0.0,
        hue: float | tuple[float, float] = 0.0,
    ) -> None:
        super().__init__(
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            backend="pillow",
        )

    def transform(self, results: dict) -> dict:
        """Apply the four adjustments in a random order with random factors.

        Args:
            results (dict): Result dict with a BGR uint8 ``img``.

        Returns:
            dict: The result dict with the jittered ``img``.
        """
        order, brightness, contrast, saturation, hue = self._rand_params()
        img = _to_pil(results["img"])
        for index in order:
            if index == 0 and brightness is not None:
                img = ImageEnhance.Brightness(img).enhance(brightness)
            elif index == 1 and contrast is not None:
                img = ImageEnhance.Contrast(img).enhance(contrast)
            elif index == 2 and saturation is not None:
                img = ImageEnhance.Color(img).enhance(saturation)
            elif index == 3 and hue is not None:
                img = _adjust_hue_pil(img, hue)
        results["img"] = _from_pil(img)
        return results
