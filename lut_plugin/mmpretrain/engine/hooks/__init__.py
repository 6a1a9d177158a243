from .momentum_teacher_hook import MomentumTeacherHook

__all__ = ["MomentumTeacherHook"]
