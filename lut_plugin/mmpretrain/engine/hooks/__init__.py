from .checkpoint_hook import LUTCheckpointHook
from .compile_transformer_blocks_hook import (
    CompileTransformerBlocksHook,
    compile_transformer_blocks,
)
from .deferred_finite_check_hook import DeferredFiniteCheckHook
from .knn_monitor_hook import KNNMonitorHook
from .momentum_teacher_hook import MomentumTeacherHook
from .step_seed_hook import LUTStepSeedHook

__all__ = [
    "CompileTransformerBlocksHook",
    "DeferredFiniteCheckHook",
    "KNNMonitorHook",
    "LUTCheckpointHook",
    "LUTStepSeedHook",
    "MomentumTeacherHook",
    "compile_transformer_blocks",
]
