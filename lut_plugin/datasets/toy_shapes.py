"""``LUTToyShapesDataset``: the embedded classification and pre-training dataset."""

from __future__ import annotations

import os.path as osp

from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

from .toy import TOY_CLS_CLASSES, ensure_toy_dataset


@DATASETS.register_module()
class LUTToyShapesDataset(CustomDataset):
    """The toy objects (:mod:`.toy`) as mmpretrain's :class:`CustomDataset`, made on first use.

    If ``data_root`` holds no dataset yet, :func:`.toy.ensure_toy_dataset` generates it
    there (atomically, so several ranks or workers may start at once); it is then read from
    ``<data_root>/<split>/`` with the annotation file ``<data_root>/meta/<split>.txt``. The
    label is the object's outline (``TOY_CLS_CLASSES``); everything else varies freely.

    Args:
        data_root (str): Dataset folder. Defaults to ``'data/generated/toy_shapes'``.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        image_size (int): Side of the generated images. Defaults to 64.
        num_train (int): Number of generated training images. Defaults to 512.
        num_val (int): Number of generated validation images. Defaults to 128.
        seed (int): Generation seed. Defaults to 0.
        with_label (bool): Load the labels. Defaults to True.
        **kwargs: Other arguments of :class:`CustomDataset` (``pipeline``, ...).
    """

    METAINFO = {"classes": TOY_CLS_CLASSES}
    DEFAULT_ROOT = "data/generated/toy_shapes"

    def __init__(
        self,
        data_root: str = DEFAULT_ROOT,
        split: str = "train",
        image_size: int = 64,
        num_train: int = 512,
        num_val: int = 128,
        seed: int = 0,
        with_label: bool = True,
        **kwargs,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        for key in ("data_prefix", "ann_file"):
            if key in kwargs:
                raise ValueError(f"LUTToyShapesDataset sets {key} itself from split={split!r}")
        ensure_toy_dataset(
            data_root,
            kind="cls",
            image_size=image_size,
            num_train=num_train,
            num_val=num_val,
            seed=seed,
        )
        self.split = split
        super().__init__(
            data_root=data_root,
            data_prefix=split,
            ann_file=osp.join("meta", f"{split}.txt"),
            with_label=with_label,
            **kwargs,
        )
