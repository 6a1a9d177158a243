"""A dataset wrapper whose loading errors name the sample's file."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset


class NamedSampleDataset(Dataset):
    """A dataset whose loading errors name the sample's file.

    OpenCV's error for an empty image file, for one, names no file. ``LUTRunner`` wraps the
    datasets of its dataloaders in it; other attributes (``metainfo``, ...) are the wrapped
    dataset's.

    Args:
        dataset (Dataset): The dataset.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as exc:
            try:
                path = self.dataset.get_data_info(index).get("img_path")
            except Exception:
                path = None
            if path is None or str(path) in str(exc):
                raise
            raise RuntimeError(
                f"Cannot load sample {index} ({path}): {type(exc).__name__}: {exc}"
            ) from exc

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling in a worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)
