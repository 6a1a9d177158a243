from .knn_monitor_hook import KNNMonitorHook
from .momentum_teacher_hook import MomentumTeacherHook

__all__ = ["KNNMonitorHook", "MomentumTeacherHook"]
