"""``LUTToyADE20KDataset``: the embedded ADE20K-layout segmentation dataset."""

from __future__ import annotations

from mmseg.datasets import ADE20KDataset
from mmseg.registry import DATASETS

from lut_plugin.datasets.toy import TOY_CLASSES, TOY_PALETTE, ensure_toy_dataset


@DATASETS.register_module()
class LUTToyADE20KDataset(ADE20KDataset):
    """The toy shapes (:mod:`lut_plugin.datasets.toy`, ``kind='ade'``) in ADE20K's layout,
    generated in ``data_root`` on first use, read as ``ADE20KDataset`` (``reduce_zero_label``:
    label 0 "other" is ignored, shapes 1..6 are classes 0..5).

    Args:
        data_root (str): Dataset folder. Defaults to ``'data/generated/toy_ade'``.
        data_prefix (dict, optional): ``img_path`` / ``seg_map_path`` below ``data_root``.
            Defaults to the training split.
        image_size, num_train, num_val, seed, max_shapes: Generation settings (64 px, 32
            training and 8 validation images, seed 0, up to 3 shapes).
        **kwargs: Other arguments of ``ADE20KDataset`` (``pipeline``, ``test_mode``...).
    """

    METAINFO = {"classes": TOY_CLASSES, "palette": [list(c) for c in TOY_PALETTE]}

    def __init__(self, data_root: str = "data/generated/toy_ade", data_prefix: dict | None = None,
                 image_size: int = 64, num_train: int = 32, num_val: int = 8, seed: int = 0,
                 max_shapes: int = 3, **kwargs) -> None:  # fmt: skip
        ensure_toy_dataset(data_root, "ade", image_size, num_train, num_val, seed, max_shapes)
        training = dict(img_path="images/training", seg_map_path="annotations/training")
        super().__init__(data_root=data_root, data_prefix=data_prefix or training, **kwargs)
