from .compile_transformer_blocks_hook import (
    CompileTransformerBlocksHook,
    compile_transformer_blocks,
)
from .deferred_finite_check_hook import DeferredFiniteCheckHook
from .momentum_teacher_hook import MomentumTeacherHook

__all__ = [
    "CompileTransformerBlocksHook",
    "DeferredFiniteCheckHook",
    "MomentumTeacherHook",
    "compile_transformer_blocks",
]
