"""LUT's two views (METHOD.md step 1) as lightly transforms."""

from __future__ import annotations

from lightly.transforms.gaussian_blur import GaussianBlur
from lightly.transforms.multi_view_transform import MultiViewTransform
from lightly.transforms.solarize import RandomSolarization
from lightly.transforms.torchvision_v2_compatibility import torchvision_transforms as T
from lightly.transforms.utils import IMAGENET_NORMALIZE
from PIL.Image import Image
from torch import Tensor


def _view_transforms(input_size: int, padding: int, hf_prob: float) -> list:
    """Both views: short side to ``input_size`` (bicubic), reflect-padded random crop, flip."""
    return [
        T.Resize(input_size, interpolation=T.InterpolationMode.BICUBIC),
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
    """

    def __init__(
        self,
        input_size: int = 224,
        padding: int = 4,
        hf_prob: float = 0.5,
        normalize: dict[str, list[float]] | None = IMAGENET_NORMALIZE,
    ) -> None:
        self.transform = T.Compose(
            _view_transforms(input_size, padding, hf_prob) + _to_tensor(normalize)
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
    ) -> None:
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
            _view_transforms(input_size, padding, hf_prob)
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

    Args:
        view_1_transform: The transform for the first view.
        view_2_transform: The transform for the second view.
    """

    def __init__(
        self,
        view_1_transform: LUTView1Transform | None = None,
        view_2_transform: LUTView2Transform | None = None,
    ) -> None:
        super().__init__(
            transforms=[
                view_1_transform or LUTView1Transform(),
                view_2_transform or LUTView2Transform(),
            ]
        )
