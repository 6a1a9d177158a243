from .compile_transformer_blocks_hook import (
    CompileTransformerBlocksHook,
    compile_transformer_blocks,
)
from .momentum_teacher_hook import MomentumTeacherHook

__all__ = ["CompileTransformerBlocksHook", "MomentumTeacherHook", "compile_transformer_blocks"]
