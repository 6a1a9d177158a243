"""Frozen-feature metrics, attention analyses, encoder features and the k-NN monitor hook."""

from .knn_monitor_hook import LUTKNNMonitorHook  # noqa: F401
from .metrics import effective_rank, evaluate_features, knn_top1, linear_probe_top1  # noqa: F401
