"""The opt-in reliability runtime: ``runner_type = 'SafeResumeRunner'`` (docs/reliability.md);
importing it registers its components and allow-lists mmengine checkpoints for ``torch.load``."""

# ruff: noqa: F401
from .compat import SkipFrozenOptimWrapperConstructor
from .hooks import (
    CompileTransformerBlocksHook,
    FiniteCheckHook,
    compile_transformer_blocks,
)
from .loading import (
    SAFE_GLOBALS,
    CheckpointError,
    CheckpointMismatchError,
    checkpoint_policy,
    load_checkpoint_file,
    match_state_dict,
)
from .runner import SafeResumeRunner
from .saving import AtomicCheckpointHook, atomic_write, earlier_run_checkpoints
from .seeding import NamedSampleDataset, SeededSampler, StepSeedHook, seed_everything
