"""Framework-agnostic data helpers (procedural toy datasets, synthetic photos)."""

from .toy import (
    TOY_CLASSES,
    TOY_CLS_CLASSES,
    TOY_CLS_PATTERNS,
    TOY_PALETTE,
    ensure_toy_dataset,
    render_classification_sample,
    render_segmentation_sample,
    write_toy_ade20k,
    write_toy_classification,
)

__all__ = [
    "TOY_CLASSES",
    "TOY_CLS_CLASSES",
    "TOY_CLS_PATTERNS",
    "TOY_PALETTE",
    "ensure_toy_dataset",
    "render_classification_sample",
    "render_segmentation_sample",
    "write_toy_ade20k",
    "write_toy_classification",
]
