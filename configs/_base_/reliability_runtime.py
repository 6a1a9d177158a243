# The reliability runtime of lut_plugin (docs/reliability.md), for any mmengine config:
#   _base_ = [..., '../_base_/reliability_runtime.py']
# SafeResumeRunner loads checkpoints weights only and strictly, writes them crash-safe
# (AtomicCheckpointHook where the config names CheckpointHook), seeds each training sample
# and step from its position for exact resume (SeededSampler, StepSeedHook) and stops at a
# non-finite loss or weight (FiniteCheckHook); it logs these settings when it starts.
# The config itself imports lut_plugin (custom_imports; bases must not repeat a key).
# Without this file the config runs on mmengine's own Runner.
runner_type = 'SafeResumeRunner'
