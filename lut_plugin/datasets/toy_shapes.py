"""``LUTToyShapesDataset``: the embedded classification and pre-training dataset."""

from __future__ import annotations

from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

from .toy import TOY_CLS_CLASSES, ensure_toy_dataset


@DATASETS.register_module()
class LUTToyShapesDataset(CustomDataset):
    """The toy objects (:mod:`.toy`, ``kind='cls'``) as a :class:`CustomDataset`, generated in
    ``data_root`` on first use (atomically, so ranks and workers may start at once) and read
    from ``<data_root>/<split>/`` with ``<data_root>/meta/<split>.txt``.

    Args:
        data_root (str): Dataset folder. Defaults to ``'data/generated/toy_shapes'``.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        image_size (int): Side of the generated images. Defaults to 64.
        num_train (int): Number of generated training images. Defaults to 512.
        num_val (int): Number of generated validation images. Defaults to 128.
        seed (int): Generation seed. Defaults to 0.
        **kwargs: Other arguments of :class:`CustomDataset` (``pipeline``, ``with_label``...).
    """

    METAINFO = {"classes": TOY_CLS_CLASSES}
    DEFAULT_ROOT = "data/generated/toy_shapes"

    def __init__(self, data_root: str = DEFAULT_ROOT, split: str = "train", image_size: int = 64,
                 num_train: int = 512, num_val: int = 128, seed: int = 0,
                 **kwargs) -> None:  # fmt: skip
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        ensure_toy_dataset(data_root, "cls", image_size, num_train, num_val, seed)
        super().__init__(data_root, data_prefix=split, ann_file=f"meta/{split}.txt", **kwargs)
