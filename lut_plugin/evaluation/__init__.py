"""Frozen-feature evaluation and the paper's analyses of encoders: ``metrics`` (k-NN, linear
probe, effective rank; plain PyTorch), ``attention`` (attention maps and distance),
``features`` (labelled datasets, encoders from checkpoints, pooled features) and the
``LUTKNNMonitorHook`` (k-NN accuracy during pre-training)."""

from .knn_monitor_hook import LUTKNNMonitorHook  # noqa: F401
from .metrics import effective_rank, evaluate_features, knn_top1, linear_probe_top1  # noqa: F401
