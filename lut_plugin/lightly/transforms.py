"""LUT's two views (METHOD.md step 1) as lightly transforms."""

from __future__ import annotations

from lightly.transforms.gaussian_blur import GaussianBlur
from lightly.transforms.multi_view_transform import MultiViewTransform
from lightly.transforms.solarize import RandomSolarization
from lightly.transforms.torchvision_v2_compatibility import torchvision_transforms as T
from lightly.transforms.utils import IMAGENET_NORMALIZE
from PIL.Image import Image
from torch import Tensor


def _resize(input_size: int) -> T.Resize:
    """Short side to ``input_size``, bicubic (METHOD.md step 1)."""
    return T.Resize(input_size, interpolation=T.InterpolationMode.BICUBIC)


def _view_transforms(input_size: int, padding: int, hf_prob: float, resize: bool) -> list:
    """Both views: resize (unless done before), reflect-padded random crop, flip."""
    return ([_resize(input_size)] if resize else []) + [
        T.RandomCrop(input_size, padding=padding, padding_mode="reflect"),
        T.RandomHorizontalFlip(p=hf_prob),
    ]


def _to_tensor(normalize: dict[str, list[float]] | None) -> list:
    transform = [T.ToTensor()]
    if normalize:
        transform.append(T.Normalize(mean=normalize["mean"], std=normalize["std"]))
    return transform


class LUTView1Transform:
    """Transforms an image into the first view for LUT.

    Input to this transform:
        PIL Image.
    Output of this transform:
        Tensor.

    Applies the following augmentations by default:
        - Resize of the short side to ``input_size`` (bicubic)
        - Random crop of ``input_size`` after ``padding`` px of reflect padding
        - Random horizontal flip
        - ImageNet normalization

    Args:
        input_size: Size of the view in pixels.
        padding: Reflect padding added on every side before the random crop.
        hf_prob: Probability that horizontal flip is applied.
        normalize: Dictionary with 'mean' and 'std' for torchvision.transforms.Normalize,
            or None for no normalization.
        resize: Resize the short side first. ``LUTTransform`` resizes once for both views
            and builds its default views with False.
    """

    def __init__(
        self,
        input_size: int = 224,
        padding: int = 4,
        hf_prob: float = 0.5,
        normalize: dict[str, list[float]] | None = IMAGENET_NORMALIZE,
        resize: bool = True,
    ) -> None:
        self.input_size = input_size
        self.transform = T.Compose(
            _view_transforms(input_size, padding, hf_prob, resize) + _to_tensor(normalize)
        )

    def __call__(self, image: Image) -> Tensor:
        """Applies the transforms to the input image."""
        transformed: Tensor = self.transform(image)
        return transformed


class LUTView2Transform:
    """Transforms an image into the second, colour-distorted view for LUT.

    Input to this transform:
        PIL Image.
    Output of this transform:
        Tensor.

    Applies the following augmentations by default:
        - The geometric augmentations of :class:`LUTView1Transform` (own random draws)
        - Color jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1), p = 0.8
        - Exactly one of gray scale, solarization (threshold 128) and Gaussian blur
          (radius uniform in ``sigmas``), chosen uniformly
        - ImageNet normalization

    Args:
        input_size: Size of the view in pixels.
        padding: Reflect padding added on every side before the random crop.
        hf_prob: Probability that horizontal flip is applied.
        cj_prob: Probability that color jitter is applied.
        cj_bright: How much to jitter brightness.
        cj_contrast: How much to jitter contrast.
        cj_sat: How much to jitter saturation.
        cj_hue: How much to jitter hue.
        sigmas: Range of the Gaussian blur radius.
        normalize: Dictionary with 'mean' and 'std' for torchvision.transforms.Normalize,
            or None for no normalization.
        resize: Resize the short side first. ``LUTTransform`` resizes once for both views
            and builds its default views with False.
    """

    def __init__(
        self,
        input_size: int = 224,
        padding: int = 4,
        hf_prob: float = 0.5,
        cj_prob: float = 0.8,
        cj_bright: float = 0.4,
        cj_contrast: float = 0.4,
        cj_sat: float = 0.2,
        cj_hue: float = 0.1,
        sigmas: tuple[float, float] = (0.1, 2.0),
        normalize: dict[str, list[float]] | None = IMAGENET_NORMALIZE,
        resize: bool = True,
    ) -> None:
        self.input_size = input_size
        color_jitter = T.ColorJitter(
            brightness=cj_bright, contrast=cj_contrast, saturation=cj_sat, hue=cj_hue
        )
        one_distortion = T.RandomChoice(
            [
                T.Grayscale(num_output_channels=3),
                RandomSolarization(prob=1.0),
                GaussianBlur(sigmas=sigmas, prob=1.0),
            ]
        )
        self.transform = T.Compose(
            _view_transforms(input_size, padding, hf_prob, resize)
            + [T.RandomApply([color_jitter], p=cj_prob), one_distortion]
            + _to_tensor(normalize)
        )

    def __call__(self, image: Image) -> Tensor:
        """Applies the transforms to the input image."""
        transformed: Tensor = self.transform(image)
        return transformed


class LUTTransform(MultiViewTransform):
    """Implements the two views of LUT [0].

    Input to this transform:
        PIL Image.
    Output of this transform:
        List of two Tensors: view 1 (geometric augmentations only) and view 2 (also colour
        jitter and one of gray scale / solarization / blur).

    - [0]: Learning with Unmasked Tokens Drives Stronger Vision Learners, ECCV 2024,
      https://arxiv.org/abs/2310.13593

    Both views are cropped from one resize of the image (short side to ``input_size``,
    bicubic): the resize is deterministic, so doing it once gives the same views as
    resizing in each view, in about 80 % of the time.

    Args:
        view_1_transform: The transform for the first view. Defaults to
            ``LUTView1Transform(input_size, resize=False)``.
        view_2_transform: The transform for the second view. Defaults to
            ``LUTView2Transform(input_size, resize=False)``.
        input_size: Short side of the shared resize and size of the views. Defaults to the
            ``input_size`` of the given views, else 224.
    """

    def __init__(
        self,
        view_1_transform: LUTView1Transform | None = None,
        view_2_transform: LUTView2Transform | None = None,
        input_size: int | None = None,
    ) -> None:
        given = (view_1_transform, view_2_transform)
        sizes = {t.input_size for t in given if hasattr(t, "input_size")}
        if input_size is None:
            input_size = next(iter(sizes)) if len(sizes) == 1 else 224
        if sizes - {input_size}:
            raise ValueError(
                f"LUTTransform resizes to {input_size} px but its views are built for "
                f"{sorted(sizes)} px: give the views and LUTTransform the same input_size"
            )
        super().__init__(
            transforms=[
                view_1_transform or LUTView1Transform(input_size, resize=False),
                view_2_transform or LUTView2Transform(input_size, resize=False),
            ]
        )
        self.resize = _resize(input_size)

    def __call__(self, image: Image) -> list[Tensor]:
        """Resizes the image once, then makes both views from it."""
        return super().__call__(self.resize(image))
