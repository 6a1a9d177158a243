from .checkpoint_hook import LUTCheckpointHook
from .momentum_teacher_hook import MomentumTeacherHook
from .step_seed_hook import LUTStepSeedHook

__all__ = ["LUTCheckpointHook", "LUTStepSeedHook", "MomentumTeacherHook"]
