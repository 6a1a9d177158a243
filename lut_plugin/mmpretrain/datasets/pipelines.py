"""The LUT two-view training pipeline as mmpretrain config dicts (METHOD.md step 1).

``configs/mmpretrain/_base_/lut_pipeline.py`` spells out the same dicts at 224 px (a test
checks both agree); this function gives them at any size, e.g. for a 32 px CPU config::

    _base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py']
    from lut_plugin.mmpretrain.datasets.pipelines import lut_view_pipelines

    view_pipeline1, view_pipeline2, lut_train_pipeline = lut_view_pipelines(32)

(mmengine parses such a config normally as long as ``_base_`` is assigned before the
import; the imported function is dropped from the final config.)
"""

from __future__ import annotations

from .transforms import PHOTOMETRIC_PARAMS_KEY


def lut_view_pipelines(
    img_size: int = 224, padding: int = 4, photometric_on_device: bool = False
) -> tuple[list, list, list]:
    """Build ``(view_pipeline1, view_pipeline2, lut_train_pipeline)``.

    The short side is resized to ``img_size`` (antialiased bicubic, as PIL; torchvision's
    uint8 kernel, within 1 grey level of PIL and several times faster; ``backend='pillow'``
    gives PIL's pixels) once per image, before the views split: the resize is
    deterministic, so this equals resizing in each view. Each
    view then draws its own random ``img_size`` crop after ``padding`` px of reflect
    padding and its own horizontal flip. View 2 then: colour jitter (0.4, 0.4, 0.2, 0.1)
    with p = 0.8, and exactly one of {grayscale, solarize (threshold 128), Gaussian blur
    (radius uniform in [0.1, 2.0])}, chosen uniformly (``LUTPhotometricDistortion``).
    Normalisation is left to the data preprocessor.

    With ``photometric_on_device=True`` view 2's photometric part only draws its
    parameters (``LUTPhotometricParams`` after ``MultiView``, in the same random order) and
    ``LUTDataPreprocessor`` applies them on the device, pixel for pixel the same.

    Args:
        img_size (int): Output side length of both views. Defaults to 224.
        padding (int): Reflect padding on every border before the crop. Defaults to 4.
        photometric_on_device (bool): Leave view 2's photometric transforms to the data
            preprocessor (``LUTDataPreprocessor``). Defaults to False.

    Returns:
        tuple[list, list, list]: The two view pipelines and the full training pipeline
        (``LoadImageFromFile`` → ``LUTResizeEdge`` → ``MultiView`` → ``PackInputs``).
    """
    view_pipeline1 = [
        dict(
            type="LUTPaddedRandomCrop",
            crop_size=img_size,
            padding=padding,
            padding_mode="reflect",
        ),
        dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    ]
    photometric = dict(
        type="LUTPhotometricDistortion",
        brightness=0.4,
        contrast=0.4,
        saturation=0.2,
        hue=0.1,
        jitter_prob=0.8,
        blur_radius=(0.1, 2.0),
        solarize_threshold=128,
    )
    view_pipeline2 = [dict(t) for t in view_pipeline1]
    if photometric_on_device:
        deferred = [dict(photometric, type="LUTPhotometricParams")]
        pack = dict(type="PackInputs", algorithm_keys=[PHOTOMETRIC_PARAMS_KEY])
    else:
        view_pipeline2.append(photometric)
        deferred, pack = [], dict(type="PackInputs")
    lut_train_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(
            type="LUTResizeEdge",
            scale=img_size,
            edge="short",
            backend="torchvision",
            interpolation="bicubic",
        ),
        dict(type="MultiView", num_views=[1, 1], transforms=[view_pipeline1, view_pipeline2]),
        *deferred,
        pack,
    ]
    return view_pipeline1, view_pipeline2, lut_train_pipeline
