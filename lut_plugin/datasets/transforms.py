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

#: where :class:`LUTPhotometricParams` puts its draw (results, then ``DataSample``)
PHOTOMETRIC_PARAMS_KEY = "lut_photometric"


@TRANSFORMS.register_module()
class LUTResizeEdge(ResizeEdge):
    """mmpretrain's :class:`ResizeEdge` with a ``'torchvision'`` backend (the default).

    ``backend='torchvision'`` resizes the uint8 array with torchvision's antialiased
    kernel, which follows PIL's resampling (at most 1 grey level apart, on well under 1 % of
    the pixels of natural images) and is several times faster on the CPU; ``'pillow'``
    gives PIL's pixels. Arguments and keys as :class:`ResizeEdge`; ``interpolation`` is
    ``'bilinear'`` or ``'bicubic'`` (the default) with ``'torchvision'``.
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
    """mmpretrain's :class:`RandomCrop` whose ``padding`` border honours ``padding_mode``.

    Upstream fills the ``padding`` border with ``pad_val`` whatever ``padding_mode`` says;
    here both paddings use ``padding_mode`` (default ``'reflect'``), as torchvision's
    ``RandomCrop(size, padding=4, padding_mode='reflect')`` does, with upstream's random
    draws. Arguments as :class:`RandomCrop`, except ``padding_mode='reflect'``.
    """

    def __init__(self, *args, padding_mode: str = "reflect", **kwargs) -> None:
        super().__init__(*args, padding_mode=padding_mode, **kwargs)

    def transform(self, results: dict) -> dict:
        """Pad with ``padding_mode``, then crop a random window."""
        img = results["img"]
        if self.padding is not None:
            img = mmcv.impad(
                img, padding=self.padding, pad_val=self.pad_val, padding_mode=self.padding_mode
            )
        if self.pad_if_needed:  # as upstream: centred, on the size after ``padding``
            h_pad = math.ceil(max(0, self.crop_size[0] - img.shape[0]) / 2)
            w_pad = math.ceil(max(0, self.crop_size[1] - img.shape[1]) / 2)
            img = mmcv.impad(
                img,
                padding=(w_pad, h_pad, w_pad, h_pad),
                pad_val=self.pad_val,
                padding_mode=self.padding_mode,
            )
        top, left, height, width = self.rand_crop_params(img)
        results["img"] = img[top : top + height, left : left + width]
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class LUTPhotometricDistortion(ColorJitter):
    """View 2's photometric transforms, pixel for pixel as torchvision's on PIL images.

    With probability ``jitter_prob`` a colour jitter (brightness, contrast, saturation and
    hue in a random order with uniform random factors, drawn as mmpretrain's
    :class:`ColorJitter`), then exactly one of grayscale, solarize and Gaussian blur (PIL's
    ``GaussianBlur(radius)``, radius uniform in ``blur_radius``), chosen uniformly. The
    pixels are computed on the BGR uint8 array by :mod:`.photometric`.

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
        """Draw one image's parameters, as Python numbers (they may travel to the device).

        Returns:
            dict: ``jitter`` (None, or ``(order, brightness, contrast, saturation, hue)``
            as :meth:`ColorJitter._rand_params`), ``exclusive`` (one of :attr:`EXCLUSIVE`),
            ``blur_radius`` (None unless ``exclusive == 'blur'``), ``solarize_threshold``.
        """
        jitter = None
        if np.random.rand() < self.jitter_prob:
            order, *factors = self._rand_params()
            jitter = ([int(i) for i in order], *(None if f is None else float(f) for f in factors))
        exclusive = self.EXCLUSIVE[np.random.randint(len(self.EXCLUSIVE))]
        radius = float(np.random.uniform(*self.blur_radius)) if exclusive == "blur" else None
        return dict(
            jitter=jitter,
            exclusive=exclusive,
            blur_radius=radius,
            solarize_threshold=self.solarize_threshold,
        )

    def transform(self, results: dict) -> dict:
        """Distort the BGR uint8 ``results['img']`` with freshly drawn parameters."""
        results["img"] = photometric.distort(results["img"], self.random_params())
        return results

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, jitter_prob={self.jitter_prob}, "
            f"blur_radius={self.blur_radius}, solarize_threshold={self.solarize_threshold})"
        )


@TRANSFORMS.register_module()
class LUTPhotometricParams(LUTPhotometricDistortion):
    """Only draws view 2's photometric parameters; ``LUTDataPreprocessor`` applies them.

    Placed after ``MultiView``, it draws in the same order as
    :class:`LUTPhotometricDistortion` at the end of view 2's pipeline (a seeded run draws
    the same parameters either way) and adds them under ``lut_photometric``, for
    ``PackInputs(algorithm_keys=['lut_photometric'])``; the images are unchanged.
    ``lut_view_pipelines(..., photometric_on_device=True)`` builds such a pipeline.
    Arguments as :class:`LUTPhotometricDistortion`.
    """

    def transform(self, results: dict) -> dict:
        """Add this image's parameters under ``lut_photometric``."""
        results[PHOTOMETRIC_PARAMS_KEY] = self.random_params()
        return results


def lut_view_pipelines(
    img_size: int = 224, padding: int = 4, photometric_on_device: bool = False
) -> tuple[list, list, list]:
    """LUT's two-view training pipeline as mmpretrain config dicts, at any size.

    Once per image, before the views split (it is deterministic): the short side to
    ``img_size``, antialiased bicubic (:class:`LUTResizeEdge`). Each view: its own random
    ``img_size`` crop after ``padding`` px of reflect padding and its own horizontal flip.
    View 2 then: colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8 and exactly one of
    grayscale, solarize (threshold 128) and Gaussian blur (radius in [0.1, 2.0])
    (:class:`LUTPhotometricDistortion`). Normalisation is the data preprocessor's.
    ``configs/mmpretrain/_base_/lut_pipeline.py`` calls it at 224 px; a config for
    another size calls it after assigning ``_base_`` (mmengine drops the function)::

        from lut_plugin.datasets import lut_view_pipelines
        view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(32)

    Args:
        img_size (int): Side length of both views. Defaults to 224.
        padding (int): Reflect padding before the crop. Defaults to 4.
        photometric_on_device (bool): View 2's photometric part only draws its parameters
            (:class:`LUTPhotometricParams` after ``MultiView``, the same random draws), for
            ``LUTDataPreprocessor`` to apply on the device. Defaults to False.

    Returns:
        tuple[list, list, list]: View 1's and view 2's pipelines and the training pipeline
        (``LoadImageFromFile``, ``LUTResizeEdge``, ``MultiView``, ``PackInputs``).
    """
    view1 = [
        dict(
            type="LUTPaddedRandomCrop", crop_size=img_size, padding=padding, padding_mode="reflect"
        ),
        dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    ]
    distortion = dict(
        type="LUTPhotometricDistortion",
        brightness=0.4,
        contrast=0.4,
        saturation=0.2,
        hue=0.1,
        jitter_prob=0.8,
        blur_radius=(0.1, 2.0),
        solarize_threshold=128,
    )
    view2 = [dict(t) for t in view1]
    if photometric_on_device:
        deferred = [dict(distortion, type="LUTPhotometricParams")]
        pack = dict(type="PackInputs", algorithm_keys=[PHOTOMETRIC_PARAMS_KEY])
    else:
        view2.append(distortion)
        deferred, pack = [], dict(type="PackInputs")
    resize = dict(
        type="LUTResizeEdge", scale=img_size, edge="short", backend="torchvision",
        interpolation="bicubic",
    )  # fmt: skip
    train = [
        dict(type="LoadImageFromFile"),
        resize,
        dict(type="MultiView", num_views=[1, 1], transforms=[view1, view2]),
        *deferred,
        pack,
    ]
    return view1, view2, train
