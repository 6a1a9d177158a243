"""LUT's two-view pipeline (METHOD.md step 1): the transforms mmpretrain lacks, and
:func:`lut_view_pipelines`, the one definition of the pipeline that the configs use."""

from __future__ import annotations

import math
from collections.abc import Sequence

import mmcv
import numpy as np
import torch
from mmcv.transforms.utils import cache_randomness
from mmpretrain.datasets.transforms import ColorJitter, RandomCrop, ResizeEdge
from mmpretrain.registry import TRANSFORMS
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as tvF

from . import photometric

PHOTOMETRIC_PARAMS_KEY = "lut_photometric"


@TRANSFORMS.register_module()
class LUTResizeEdge(ResizeEdge):
    """mmpretrain's :class:`ResizeEdge` with a ``'torchvision'`` backend (the default):
    torchvision's antialiased kernel on the uint8 array, several times faster on the CPU than
    PIL's and at most 1 grey level apart (well under 1 % of natural images' pixels).
    Arguments as :class:`ResizeEdge`; ``'torchvision'`` takes ``'bilinear'`` or ``'bicubic'``.
    """

    _TORCHVISION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}

    def __init__(self, scale: int, edge: str = "short", backend: str = "torchvision",
                 interpolation: str = "bicubic") -> None:  # fmt: skip
        super().__init__(scale=scale, edge=edge, backend=backend, interpolation=interpolation)
        if backend == "torchvision" and interpolation not in self._TORCHVISION:
            raise ValueError(f"interpolation {interpolation!r} is not available with backend "
                             f"'torchvision'; choose from {sorted(self._TORCHVISION)}")  # fmt: skip

    def _resize_img(self, results: dict) -> None:
        if self.backend != "torchvision":
            super()._resize_img(results)
            return
        img = results["img"]
        width, height = results["scale"]
        hwc = np.ascontiguousarray(img if img.ndim == 3 else img[..., None])
        chw = torch.from_numpy(hwc).permute(2, 0, 1)  # a channels-last view, no copy
        mode = self._TORCHVISION[self.interpolation]
        out = tvF.resize(chw, [height, width], interpolation=mode, antialias=True)
        out = np.ascontiguousarray(out.permute(1, 2, 0).numpy())
        out = out if img.ndim == 3 else out[..., 0]
        results.update(img=out, img_shape=out.shape[:2], scale=out.shape[:2][::-1],
                       scale_factor=(width / img.shape[1], height / img.shape[0]))  # fmt: skip


@TRANSFORMS.register_module()
class LUTPaddedRandomCrop(RandomCrop):
    """mmpretrain's :class:`RandomCrop` (same random draws) whose ``padding`` border honours
    ``padding_mode`` (default ``'reflect'``; upstream fills it with ``pad_val``), as
    torchvision's ``RandomCrop(size, padding=4, padding_mode='reflect')``."""

    def __init__(self, *args, padding_mode: str = "reflect", **kwargs) -> None:
        super().__init__(*args, padding_mode=padding_mode, **kwargs)

    def transform(self, results: dict) -> dict:
        img, pad = results["img"], dict(pad_val=self.pad_val, padding_mode=self.padding_mode)
        if self.padding is not None:
            img = mmcv.impad(img, padding=self.padding, **pad)
        if self.pad_if_needed:  # as upstream: centred, on the size after ``padding``
            h_pad = math.ceil(max(0, self.crop_size[0] - img.shape[0]) / 2)
            w_pad = math.ceil(max(0, self.crop_size[1] - img.shape[1]) / 2)
            img = mmcv.impad(img, padding=(w_pad, h_pad, w_pad, h_pad), **pad)
        top, left, height, width = self.rand_crop_params(img)
        results["img"] = img[top : top + height, left : left + width]
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class LUTPhotometricDistortion(ColorJitter):
    """View 2's photometric transforms on the BGR uint8 image (:mod:`.photometric`, PIL's
    pixels): with probability ``jitter_prob`` mmpretrain's :class:`ColorJitter` draw, then
    exactly one of grayscale, solarize and PIL's ``GaussianBlur`` (radius uniform in
    ``blur_radius``), chosen uniformly.

    Args:
        brightness (float | Sequence[float]): As :class:`ColorJitter`. Defaults to 0.4.
        contrast (float | Sequence[float]): As :class:`ColorJitter`. Defaults to 0.4.
        saturation (float | Sequence[float]): As :class:`ColorJitter`. Defaults to 0.2.
        hue (float | Sequence[float]): As :class:`ColorJitter`. Defaults to 0.1.
        jitter_prob (float): Probability of the colour jitter. Defaults to 0.8.
        blur_radius (Sequence[float]): Range of the blur radius. Defaults to (0.1, 2.0).
        solarize_threshold (int): Values at or above it are inverted. Defaults to 128.
    """

    EXCLUSIVE = ("grayscale", "solarize", "blur")

    def __init__(self, brightness: float | Sequence[float] = 0.4,
                 contrast: float | Sequence[float] = 0.4, saturation: float | Sequence[float] = 0.2,
                 hue: float | Sequence[float] = 0.1, jitter_prob: float = 0.8,
                 blur_radius: Sequence[float] = (0.1, 2.0),
                 solarize_threshold: int = 128) -> None:  # fmt: skip
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
        """One image's draw, Python numbers (they may travel to the device): ``jitter`` (None
        or ``(order, brightness, contrast, saturation, hue)`` as ``ColorJitter``),
        ``exclusive`` (of :attr:`EXCLUSIVE`), ``blur_radius`` (None unless blur),
        ``solarize_threshold``."""
        jitter = None
        if np.random.rand() < self.jitter_prob:
            order, *factors = self._rand_params()
            jitter = ([int(i) for i in order], *(None if f is None else float(f) for f in factors))
        exclusive = self.EXCLUSIVE[np.random.randint(len(self.EXCLUSIVE))]
        radius = float(np.random.uniform(*self.blur_radius)) if exclusive == "blur" else None
        return dict(jitter=jitter, exclusive=exclusive, blur_radius=radius,
                    solarize_threshold=self.solarize_threshold)  # fmt: skip

    def transform(self, results: dict) -> dict:
        results["img"] = photometric.distort(results["img"], self.random_params())
        return results

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, jitter_prob={self.jitter_prob}, "
            f"blur_radius={self.blur_radius}, solarize_threshold={self.solarize_threshold})"
        )


@TRANSFORMS.register_module()
class LUTPhotometricParams(LUTPhotometricDistortion):
    """Only draws view 2's parameters (same draws as :class:`LUTPhotometricDistortion` at the
    end of view 2's pipeline) into ``lut_photometric``, for ``LUTDataPreprocessor`` to apply;
    placed after ``MultiView`` (``lut_view_pipelines(..., photometric_on_device=True)``)."""

    def transform(self, results: dict) -> dict:
        results[PHOTOMETRIC_PARAMS_KEY] = self.random_params()
        return results


def lut_view_pipelines(img_size: int = 224, padding: int = 4,
                       photometric_on_device: bool = False) -> tuple[list, list, list]:  # fmt: skip
    """LUT's two-view pipeline (view 1, view 2, training pipeline) as config dicts
    (docs/data.md): the short side to ``img_size`` once (:class:`LUTResizeEdge`); per view a
    random crop after reflect padding and a horizontal flip; view 2 then
    :class:`LUTPhotometricDistortion`.

    Args:
        img_size (int): Side length of both views. Defaults to 224.
        padding (int): Reflect padding before the crop. Defaults to 4.
        photometric_on_device (bool): View 2 only draws its photometric parameters
            (:class:`LUTPhotometricParams`) for ``LUTDataPreprocessor``. Defaults to False.
    """
    view1 = [
        dict(type="LUTPaddedRandomCrop", crop_size=img_size, padding=padding,
             padding_mode="reflect"),
        dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    ]  # fmt: skip
    distortion = dict(type="LUTPhotometricDistortion", brightness=0.4, contrast=0.4,
                      saturation=0.2, hue=0.1, jitter_prob=0.8, blur_radius=(0.1, 2.0),
                      solarize_threshold=128)  # fmt: skip
    view2 = [dict(t) for t in view1]
    if photometric_on_device:
        deferred = [dict(distortion, type="LUTPhotometricParams")]
        pack = dict(type="PackInputs", algorithm_keys=[PHOTOMETRIC_PARAMS_KEY])
    else:
        view2.append(distortion)
        deferred, pack = [], dict(type="PackInputs")
    resize = dict(type="LUTResizeEdge", scale=img_size, edge="short", backend="torchvision",
                  interpolation="bicubic")  # fmt: skip
    views = dict(type="MultiView", num_views=[1, 1], transforms=[view1, view2])
    return view1, view2, [dict(type="LoadImageFromFile"), resize, views, *deferred, pack]
