"""LUT's two views (METHOD.md step 1) as lightly transforms: the mmpretrain pipeline's own
view transforms (:func:`lut_plugin.datasets.lut_view_pipelines`, numpy's random draws) on the
PIL image's pixels, after torchvision's short-side resize of the PIL image."""

from __future__ import annotations

import numpy as np
import torch
from lightly.transforms.multi_view_transform import MultiViewTransform
from lightly.transforms.utils import IMAGENET_NORMALIZE
from mmcv.transforms import Compose
from mmpretrain.registry import TRANSFORMS
from PIL.Image import Image
from torchvision.transforms.functional import to_tensor
from torchvision.transforms.v2 import InterpolationMode, Resize
from torchvision.transforms.v2.functional import normalize as tv_normalize

from lut_plugin.datasets import lut_view_pipelines


class LUTView1Transform:
    """LUT's first view of a PIL image as a normalised tensor: short side resized (bicubic),
    random crop after reflect padding, random horizontal flip.

    Args:
        input_size (int): Size of the view in pixels. Defaults to 224.
        padding (int): Reflect padding on every side before the crop. Defaults to 4.
        hf_prob (float): Probability of the horizontal flip. Defaults to 0.5.
        normalize (dict, optional): ``mean`` and ``std``, or None. Defaults to ImageNet's.
        resize (bool): Resize first (``LUTTransform`` resizes once for both views). Defaults
            to True.
    """

    _VIEW = 0
    _distortion: dict = {}  # LUTView2Transform's arguments of LUTPhotometricDistortion

    def __init__(self, input_size: int = 224, padding: int = 4, hf_prob: float = 0.5,
                 normalize: dict[str, list[float]] | None = IMAGENET_NORMALIZE,
                 resize: bool = True) -> None:  # fmt: skip
        self.input_size, self.normalize = input_size, normalize
        self.resize = Resize(input_size, InterpolationMode.BICUBIC) if resize else None
        pipeline = lut_view_pipelines(input_size, padding)[self._VIEW]
        pipeline[1]["prob"] = hf_prob
        pipeline[2:] = [dict(t, **self._distortion) for t in pipeline[2:]]
        self.transform = Compose([TRANSFORMS.build(t) for t in pipeline])

    def __call__(self, image: Image) -> torch.Tensor:
        image = self.resize(image) if self.resize else image
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
        view = to_tensor(np.ascontiguousarray(self.transform(dict(img=bgr))["img"][..., ::-1]))
        if self.normalize:
            view = tv_normalize(view, self.normalize["mean"], self.normalize["std"])
        return view


class LUTView2Transform(LUTView1Transform):
    """LUT's second view: :class:`LUTView1Transform`'s, then ``LUTPhotometricDistortion``.

    Args:
        input_size, padding, hf_prob, normalize, resize: As :class:`LUTView1Transform`.
        cj_prob (float): Probability of the colour jitter. Defaults to 0.8.
        cj_bright (float): Brightness jitter. Defaults to 0.4.
        cj_contrast (float): Contrast jitter. Defaults to 0.4.
        cj_sat (float): Saturation jitter. Defaults to 0.2.
        cj_hue (float): Hue jitter. Defaults to 0.1.
        sigmas (tuple[float, float]): Blur radius range. Defaults to (0.1, 2.0).
    """

    _VIEW = 1

    def __init__(self, input_size: int = 224, padding: int = 4, hf_prob: float = 0.5,
                 cj_prob: float = 0.8, cj_bright: float = 0.4, cj_contrast: float = 0.4,
                 cj_sat: float = 0.2, cj_hue: float = 0.1, sigmas: tuple[float, float] = (0.1, 2.0),
                 normalize: dict[str, list[float]] | None = IMAGENET_NORMALIZE,
                 resize: bool = True) -> None:  # fmt: skip
        self._distortion = dict(
            jitter_prob=cj_prob, brightness=cj_bright, contrast=cj_contrast, saturation=cj_sat,
            hue=cj_hue, blur_radius=sigmas,
        )  # fmt: skip
        super().__init__(input_size, padding, hf_prob, normalize, resize)


class LUTTransform(MultiViewTransform):
    """LUT's two views of a PIL image (ECCV 2024, https://arxiv.org/abs/2310.13593), both
    cropped from one deterministic resize (short side to ``input_size``, bicubic).

    Args:
        view_1_transform (LUTView1Transform, optional): Defaults to
            ``LUTView1Transform(input_size, resize=False)``.
        view_2_transform (LUTView2Transform, optional): Defaults to
            ``LUTView2Transform(input_size, resize=False)``.
        input_size (int, optional): Short side of the resize and size of the views.
            Defaults to the ``input_size`` of the given views, else 224.
    """

    def __init__(self, view_1_transform: LUTView1Transform | None = None,
                 view_2_transform: LUTView2Transform | None = None,
                 input_size: int | None = None) -> None:  # fmt: skip
        given = (view_1_transform, view_2_transform)
        sizes = {t.input_size for t in given if hasattr(t, "input_size")}
        if input_size is None:
            input_size = next(iter(sizes)) if len(sizes) == 1 else 224
        if sizes - {input_size}:
            raise ValueError(
                f"LUTTransform resizes to {input_size} px but its views are built for "
                f"{sorted(sizes)} px: give the views and LUTTransform the same input_size"
            )
        views = [view_1_transform or LUTView1Transform(input_size, resize=False),
                 view_2_transform or LUTView2Transform(input_size, resize=False)]  # fmt: skip
        super().__init__(views)
        self.resize = Resize(input_size, InterpolationMode.BICUBIC)

    def __call__(self, image: Image) -> list[torch.Tensor]:
        return super().__call__(self.resize(image))
