from .checkpoint_hook import LUTCheckpointHook, earlier_run_checkpoints
from .compile_transformer_blocks_hook import (
    LUTCompileTransformerBlocksHook,
    compile_transformer_blocks,
    python_drop_rates,
)
from .finite_check_hook import LUTFiniteCheckHook
from .knn_monitor_hook import LUTKNNMonitorHook
from .momentum_teacher_hook import MomentumTeacherHook
from .runtime_info_hook import LUTRuntimeInfoHook
from .step_seed_hook import LUTStepSeedHook

__all__ = [
    "LUTCompileTransformerBlocksHook",
    "LUTFiniteCheckHook",
    "LUTKNNMonitorHook",
    "LUTCheckpointHook",
    "LUTRuntimeInfoHook",
    "LUTStepSeedHook",
    "MomentumTeacherHook",
    "compile_transformer_blocks",
    "earlier_run_checkpoints",
    "python_drop_rates",
]
