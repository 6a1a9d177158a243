"""``LUTToyADE20KDataset``: the embedded ADE20K-layout segmentation dataset."""

from __future__ import annotations

from mmseg.datasets import ADE20KDataset
from mmseg.registry import DATASETS

from lut_plugin.data.toy import TOY_CLASSES, TOY_PALETTE, ensure_toy_dataset


@DATASETS.register_module()
class LUTToyADE20KDataset(ADE20KDataset):
    """Procedural shapes in the ADE20K folder layout, generated on first use.

    If ``data_root`` holds no dataset yet, both splits are generated there (atomically)
    by :func:`lut_plugin.data.toy.ensure_toy_dataset`; then it is read exactly like
    :class:`mmseg.datasets.ADE20KDataset` (``.jpg`` images, ``.png`` label maps,
    ``reduce_zero_label=True``): label 0 ("other") becomes 255 (ignored) and the shape
    kinds 1..6 become classes 0..5 (``TOY_CLASSES``).

    Args:
        data_root (str): Dataset folder, relative to the working directory or absolute.
            Defaults to ``'data/generated/toy_ade'``.
        data_prefix (dict): ``img_path`` / ``seg_map_path`` below ``data_root``.
            Defaults to the training split.
        image_size (int): Side of the generated square images. Defaults to 64.
        num_train (int): Number of generated training images. Defaults to 32.
        num_val (int): Number of generated validation images. Defaults to 8.
        seed (int): Generation seed. Defaults to 0.
        max_shapes (int): At most this many shapes per image. Defaults to 3.
        **kwargs: Other arguments of :class:`mmseg.datasets.ADE20KDataset`
            (``pipeline``, ``test_mode``, ``reduce_zero_label``, ...).
    """

    METAINFO = {"classes": TOY_CLASSES, "palette": [list(c) for c in TOY_PALETTE]}

    def __init__(
        self,
        data_root: str = "data/generated/toy_ade",
        data_prefix: dict | None = None,
        image_size: int = 64,
        num_train: int = 32,
        num_val: int = 8,
        seed: int = 0,
        max_shapes: int = 3,
        **kwargs,
    ) -> None:
        if data_prefix is None:
            data_prefix = dict(img_path="images/training", seg_map_path="annotations/training")
        ensure_toy_dataset(
            data_root,
            kind="ade",
            image_size=image_size,
            num_train=num_train,
            num_val=num_val,
            seed=seed,
            max_shapes=max_shapes,
        )
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)
