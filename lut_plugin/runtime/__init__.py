"""The opt-in reliability runtime: ``runner_type = 'SafeResumeRunner'`` (docs/reliability.md).

Importing it registers the runner, hooks, sampler, optimiser constructor, the ``atomic_local``
file backend and the strict ``Pretrained`` initializer (``lut_plugin`` scope) in mmengine's
registries, and allow-lists the types of mmengine checkpoints for ``torch.load`` (``compat``).
"""

# ruff: noqa: F401
from . import compat
from .hooks import (
    CompileTransformerBlocksHook,
    DeferredRuntimeInfoHook,
    FiniteCheckHook,
    compile_transformer_blocks,
)
from .loading import (
    SAFE_GLOBALS,
    CheckpointError,
    CheckpointMismatchError,
    StrictPretrainedInit,
    checkpoint_policy,
    load_checkpoint_file,
    match_state_dict,
)
from .optim import SkipFrozenOptimWrapperConstructor
from .runner import SafeResumeRunner
from .saving import AtomicCheckpointHook, atomic_write, earlier_run_checkpoints
from .seeding import NamedSampleDataset, SeededSampler, StepSeedHook, seed_everything
