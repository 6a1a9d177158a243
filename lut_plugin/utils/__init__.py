"""Runtime and config helpers used by the launchers in ``tools/``."""

from .compat import (
    accelerator_available,
    amp_fallback_without_gpu,
    check_checkpoint_file,
    checkpoint_safe_globals,
    disable_persistent_workers_without_workers,
    dist_fallback_without_gpu,
    init_cpu_distributed,
    register_checkpoint_safe_globals,
    strip_collate_fn_scope,
)
from .launch import (
    add_resumable_rng_hook,
    apply_runtime_fixes,
    build_runner,
    config_scope,
    merge_test_args,
    merge_train_args,
)
from .resumable_rng_hook import ResumableRNGHook, reseed_all

__all__ = [
    "ResumableRNGHook",
    "accelerator_available",
    "add_resumable_rng_hook",
    "apply_runtime_fixes",
    "build_runner",
    "config_scope",
    "merge_test_args",
    "merge_train_args",
    "amp_fallback_without_gpu",
    "check_checkpoint_file",
    "checkpoint_safe_globals",
    "disable_persistent_workers_without_workers",
    "dist_fallback_without_gpu",
    "init_cpu_distributed",
    "register_checkpoint_safe_globals",
    "reseed_all",
    "strip_collate_fn_scope",
]
