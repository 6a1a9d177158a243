"""Transforms of the LUT two-view pipeline (METHOD.md step 1) that mmpretrain lacks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from mmcv.transforms.utils import cache_randomness
from mmpretrain.datasets.transforms import ColorJitter, RandomCrop, ResizeEdge
from mmpretrain.registry import TRANSFORMS
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as tvF

from . import photometric

_BORDERS = {
    "constant": cv2.BORDER_CONSTANT,
    "edge": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
}


def _ltrb(padding: int | Sequence[int] | None) -> tuple[int, int, int, int]:
    """``padding`` as (left, top, right, bottom), read as ``mmcv.impad`` reads it."""
    if padding is None:
        return 0, 0, 0, 0
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return padding * 2
    if len(padding) == 4:
        return padding
    raise ValueError(f"padding must be an int or 2 or 4 ints, got {padding}")


@TRANSFORMS.register_module()
class LUTResizeEdge(ResizeEdge):
    """mmpretrain's :class:`ResizeEdge` with a ``'torchvision'`` backend.

    ``backend='torchvision'`` resizes the uint8 array with torchvision's antialiased
    resize (``antialias=True``), which follows PIL's resampling: on natural images it
    differs from ``backend='pillow'`` by at most 1 grey level, on well under 1 % of the
    pixels, and is several times faster on the CPU. The other backends are upstream's.

    **Required Keys:**

    - img

    **Modified Keys:**

    - img
    - img_shape

    **Added Keys:**

    - scale
    - scale_factor

    Args:
        scale (int): The edge scale to resizing.
        edge (str): The edge to resize: ``'short'``, ``'long'``, ``'width'`` or
            ``'height'``. Defaults to ``'short'``.
        backend (str): ``'torchvision'``, ``'pillow'`` or ``'cv2'``.
            Defaults to ``'torchvision'``.
        interpolation (str): ``'bilinear'`` or ``'bicubic'`` for ``'torchvision'``;
            upstream's choices otherwise. Defaults to ``'bicubic'``.
    """

    _TORCHVISION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}

    def __init__(
        self,
        scale: int,
        edge: str = "short",
        backend: str = "torchvision",
        interpolation: str = "bicubic",
    ) -> None:
        super().__init__(scale=scale, edge=edge, backend=backend, interpolation=interpolation)
        if backend == "torchvision" and interpolation not in self._TORCHVISION:
            raise ValueError(
                f"interpolation {interpolation!r} is not available with backend "
                f"'torchvision'; choose from {sorted(self._TORCHVISION)}"
            )

    def _resize_img(self, results: dict) -> None:
        if self.backend != "torchvision":
            super()._resize_img(results)
            return
        img = results["img"]
        width, height = results["scale"]
        hwc = np.ascontiguousarray(img if img.ndim == 3 else img[..., None])
        out = tvF.resize(
            torch.from_numpy(hwc).permute(2, 0, 1),  # a channels-last view, no copy
            [height, width],
            interpolation=self._TORCHVISION[self.interpolation],
            antialias=True,
        )
        out = np.ascontiguousarray(out.permute(1, 2, 0).numpy())
        if img.ndim == 2:
            out = out[..., 0]
        results["img"] = out
        results["img_shape"] = out.shape[:2]
        results["scale"] = out.shape[:2][::-1]
        results["scale_factor"] = (width / img.shape[1], height / img.shape[0])


@TRANSFORMS.register_module()
class LUTPaddedRandomCrop(RandomCrop):
    """Random crop whose border ``padding`` honours ``padding_mode``, computed per window.

    mmpretrain's :class:`RandomCrop` always fills its ``padding`` border with the constant
    ``pad_val`` and uses ``padding_mode`` only for ``pad_if_needed``. This transform pads
    with ``padding_mode`` in both places, as torchvision's
    ``RandomCrop(size, padding=4, padding_mode='reflect')`` does: pad every border, then
    crop ``crop_size`` at a uniformly random offset (the same random draws as
    :class:`RandomCrop`). Only the crop window is copied and padded, which gives the same
    pixels as padding the whole image first.

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
        crop_size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        pad_val: int | float | Sequence = 0,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__(
            crop_size=crop_size,
            padding=padding,
            pad_if_needed=pad_if_needed,
            pad_val=pad_val,
            padding_mode=padding_mode,
        )
        self._padding = _ltrb(padding)

    @cache_randomness
    def random_offsets(self, height: int, width: int) -> tuple[int, int, int, int]:
        """:meth:`RandomCrop.rand_crop_params` for a padded image of ``height x width``.

        Args:
            height (int): Height of the padded image.
            width (int): Width of the padded image.

        Returns:
            tuple[int, int, int, int]: ``(offset_h, offset_w, target_h, target_w)``.
        """
        target_h, target_w = self.crop_size
        if (height, width) == (target_h, target_w):
            return 0, 0, height, width
        target_h, target_w = min(height, target_h), min(width, target_w)
        offset_h = np.random.randint(0, height - target_h + 1)
        offset_w = np.random.randint(0, width - target_w + 1)
        return offset_h, offset_w, target_h, target_w

    def transform(self, results: dict) -> dict:
        """Crop a random window of the padded image.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict with the cropped ``img`` and its ``img_shape``.
        """
        img = results["img"]
        h, w = img.shape[:2]
        extra = (0, 0, 0, 0)
        if self.pad_if_needed:  # as RandomCrop: centred, computed on the padded size
            left, top, right, bottom = self._padding
            h_pad = math.ceil(max(0, self.crop_size[0] - (h + top + bottom)) / 2)
            w_pad = math.ceil(max(0, self.crop_size[1] - (w + left + right)) / 2)
            extra = (w_pad, h_pad, w_pad, h_pad)
        left, top, right, bottom = (a + b for a, b in zip(self._padding, extra))
        offset_h, offset_w, target_h, target_w = self.random_offsets(
            h + top + bottom, w + left + right
        )
        # The window in image coordinates, and how far it reaches into the padding.
        y0, x0 = offset_h - top, offset_w - left
        y1, x1 = y0 + target_h, x0 + target_w
        window = img[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        border = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
        # A reflection must stay inside the window, and two reflective paddings (padding,
        # then pad_if_needed) reflect about different edges: pad the whole image then.
        reflective = self.padding_mode in ("reflect", "symmetric")
        if window.size == 0 or (
            reflective
            and (
                (any(extra) and any(self._padding))
                or max(border[:2]) >= window.shape[0]
                or max(border[2:]) >= window.shape[1]
            )
        ):
            padded = img
            for pad_l, pad_t, pad_r, pad_b in (self._padding, extra):
                if pad_l or pad_t or pad_r or pad_b:
                    padded = cv2.copyMakeBorder(
                        padded,
                        pad_t,
                        pad_b,
                        pad_l,
                        pad_r,
                        _BORDERS[self.padding_mode],
                        value=self.pad_val,
                    )
            out = padded[offset_h : offset_h + target_h, offset_w : offset_w + target_w]
        elif any(border):
            out = cv2.copyMakeBorder(
                np.ascontiguousarray(window),
                *border,
                _BORDERS[self.padding_mode],
                value=self.pad_val,
            )
        else:
            out = window
        results["img"] = out
        results["img_shape"] = out.shape[:2]
        return results


@TRANSFORMS.register_module()
class LUTPhotometricDistortion(ColorJitter):
    """The photometric part of LUT's second view, pixel for pixel as torchvision on PIL.

    With probability ``jitter_prob`` a colour jitter (brightness, contrast, saturation and
    hue in a random order with uniform random factors, as mmpretrain's
    :class:`ColorJitter` and torchvision's ``ColorJitter``), then exactly one of
    grayscale, solarize (``ImageOps.solarize(img, solarize_threshold)``) and Gaussian blur
    (PIL's ``GaussianBlur(radius)``, radius uniform in ``blur_radius``), chosen uniformly.

    Given the same random parameters, the output equals torchvision's/PIL's on the same
    RGB image (see :mod:`lut_plugin.mmpretrain.datasets.photometric`), computed on the
    BGR uint8 array with lookup tables and OpenCV.

    **Required Keys:**

    - img (BGR, uint8)

    **Modified Keys:**

    - img

    Args:
        brightness (float | Sequence[float]): Factor drawn from
            ``[max(0, 1 - brightness), 1 + brightness]`` or the given range.
            Defaults to 0.4.
        contrast (float | Sequence[float]): As ``brightness``, for contrast.
            Defaults to 0.4.
        saturation (float | Sequence[float]): As ``brightness``, for saturation.
            Defaults to 0.2.
        hue (float | Sequence[float]): Hue shift drawn from ``[-hue, hue]`` (``hue`` <= 0.5)
            or the given range. Defaults to 0.1.
        jitter_prob (float): Probability of the colour jitter. Defaults to 0.8.
        blur_radius (Sequence[float]): Range of the uniform Gaussian blur radius.
            Defaults to (0.1, 2.0).
        solarize_threshold (int): Values at or above it are inverted. Defaults to 128.
    """

    EXCLUSIVE = ("grayscale", "solarize", "blur")

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        saturation: float | Sequence[float] = 0.2,
        hue: float | Sequence[float] = 0.1,
        jitter_prob: float = 0.8,
        blur_radius: Sequence[float] = (0.1, 2.0),
        solarize_threshold: int = 128,
    ) -> None:
        super().__init__(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)
        if not 0 <= jitter_prob <= 1:
            raise ValueError(f"jitter_prob must be in [0, 1], got {jitter_prob}")
        if len(blur_radius) != 2 or not 0 < blur_radius[0] <= blur_radius[1]:
            raise ValueError(f"blur_radius must be (low, high), 0 < low <= high: {blur_radius}")
        self.jitter_prob = jitter_prob
        self.blur_radius = tuple(float(r) for r in blur_radius)
        self.solarize_threshold = solarize_threshold
        photometric.hsv_tables()  # built here, once per process, not in every worker

    @cache_randomness
    def random_params(self) -> dict:
        """Draw this image's parameters.

        Returns:
            dict: ``jitter``: None (no jitter) or ``(order, brightness, contrast,
            saturation, hue)`` as :meth:`ColorJitter._rand_params`; ``exclusive``: one of
            :attr:`EXCLUSIVE`; ``blur_radius``: the radius when ``exclusive == 'blur'``.
            Python ints and floats (they may travel from a worker to the data preprocessor).
        """
        jitter = None
        if np.random.rand() < self.jitter_prob:
            order, *factors = self._rand_params()
            jitter = ([int(i) for i in order], *(None if f is None else float(f) for f in factors))
        exclusive = self.EXCLUSIVE[np.random.randint(len(self.EXCLUSIVE))]
        radius = float(np.random.uniform(*self.blur_radius)) if exclusive == "blur" else None
        return dict(jitter=jitter, exclusive=exclusive, blur_radius=radius)

    def transform(self, results: dict) -> dict:
        """Distort ``results['img']`` with freshly drawn parameters.

        Args:
            results (dict): Result dict with a BGR uint8 ``img``.

        Returns:
            dict: The result dict with the distorted ``img``.
        """
        params = self.random_params()
        img = np.ascontiguousarray(results["img"])
        if params["jitter"] is not None:
            order, brightness, contrast, saturation, hue = params["jitter"]
            steps = (
                (photometric.adjust_brightness, brightness),
                (photometric.adjust_contrast, contrast),
                (photometric.adjust_saturation, saturation),
                (photometric.adjust_hue, hue),
            )
            for index in order:
                adjust, factor = steps[index]
                if factor is not None:
                    img = adjust(img, factor)
        if params["exclusive"] == "grayscale":
            img = photometric.grayscale(img)
        elif params["exclusive"] == "solarize":
            img = photometric.solarize(img, self.solarize_threshold)
        else:
            img = photometric.gaussian_blur(img, params["blur_radius"])
        results["img"] = img
        return results

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, jitter_prob={self.jitter_prob}, "
            f"blur_radius={self.blur_radius}, solarize_threshold={self.solarize_threshold})"
        )


#: where :class:`LUTPhotometricParams` puts its draw (results, then ``DataSample``)
PHOTOMETRIC_PARAMS_KEY = "lut_photometric"


@TRANSFORMS.register_module()
class LUTPhotometricParams(LUTPhotometricDistortion):
    """Draw view 2's photometric parameters; ``LUTDataPreprocessor`` applies them on the GPU.

    Placed after ``MultiView`` (its random draws then come in the same order as those of
    :class:`LUTPhotometricDistortion` at the end of view 2's pipeline, so a seeded run draws
    the same parameters either way), with ``PackInputs(algorithm_keys=['lut_photometric'])``.
    The CPU workers then only decode, resize, crop and flip; the data preprocessor distorts
    view 2 with :func:`~lut_plugin.mmpretrain.datasets.photometric_torch.distort`, pixel for
    pixel as :class:`LUTPhotometricDistortion`. ``lut_view_pipelines(...,
    photometric_on_device=True)`` builds such a pipeline.

    **Added Keys:**

    - lut_photometric (dict): ``jitter`` (None or ``(order, brightness, contrast,
      saturation, hue)``), ``exclusive``, ``blur_radius`` and ``solarize_threshold``, as
      Python numbers.

    Args:
        **kwargs: The arguments of :class:`LUTPhotometricDistortion`.
    """

    def transform(self, results: dict) -> dict:
        """Add this image's parameters under ``lut_photometric``; the images are unchanged.

        Args:
            results (dict): Result dict.

        Returns:
            dict: The result dict with ``lut_photometric``.
        """
        results[PHOTOMETRIC_PARAMS_KEY] = dict(
            self.random_params(), solarize_threshold=self.solarize_threshold
        )
        return results
