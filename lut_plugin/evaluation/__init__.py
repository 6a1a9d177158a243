"""Evaluation of frozen encoder features (plain PyTorch, no framework).

- :func:`knn_top1`: weighted k-NN classification (cosine, ``k = 20``, ``T = 0.07``), the vote
  of lightly's ``knn_predict`` (as DINO's);
- :func:`linear_probe_top1`: MAE's linear probe (``BatchNorm1d`` without affine + ``Linear``)
  trained on fixed features;
- :func:`effective_rank`, :func:`std_of_l2_normalized`: dimensional-collapse indicators;
- :func:`pool_tokens`, :func:`extract_features`: cls-token and mean-of-patch-token features
  of a ViT;
- :func:`evaluate_features`: all of the above for one train/val split.

The mmpretrain glue (datasets, checkpoints, the training-time monitor) is in
``lut_plugin/mmpretrain/evaluation.py`` and ``LUTKNNMonitorHook``.
"""

from .collapse import effective_rank, std_of_l2_normalized
from .features import POOLINGS, extract_features, pool_tokens
from .knn import knn_predict_labels, knn_top1
from .linear_probe import linear_probe_top1
from .summary import evaluate_features

__all__ = [
    "POOLINGS",
    "effective_rank",
    "evaluate_features",
    "extract_features",
    "knn_predict_labels",
    "knn_top1",
    "linear_probe_top1",
    "pool_tokens",
    "std_of_l2_normalized",
]
