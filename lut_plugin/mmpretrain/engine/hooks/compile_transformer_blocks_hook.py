"""Compiles the transformer blocks of a model in place with ``torch.compile``."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

# mmpretrain's ViT layer (LUT/MAE encoders and the MAE decoder, BEiT/SimMIM layers as
# subclasses) and mmseg's ViT layer share this class name.
TRANSFORMER_BLOCK_NAMES = ("TransformerEncoderLayer",)


def python_drop_rates(model: nn.Module) -> None:
    """Make numpy drop-path rates Python floats, so that Dynamo does not branch on them.

    mmpretrain's ViT gives ``DropPath`` a numpy rate (``np.linspace``); Dynamo treats numpy
    scalars as tensors, so ``drop_prob == 0.`` would split each encoder block into 6 graphs.
    """
    for module in model.modules():
        if isinstance(getattr(module, "drop_prob", None), np.generic):
            module.drop_prob = float(module.drop_prob)


def compile_transformer_blocks(
    model: nn.Module, block_names: Iterable[str] = TRANSFORMER_BLOCK_NAMES, **compile_kwargs
) -> int:
    """Compile every transformer block of ``model`` in place.

    Each block whose class, or one of its base classes, is named in
    ``block_names`` gets ``nn.Module.compile(**compile_kwargs)``: the module
    object stays where it is, so state-dict keys, checkpoints and the momentum
    teacher's copies are unchanged. The blocks hold most of the FLOPs; the code
    around them (masking, gathers, per-view heads) stays eager.

    Args:
        model (nn.Module): The model (a wrapper such as DDP works too).
        block_names (Iterable[str]): Class names of the blocks. Defaults to
            ``('TransformerEncoderLayer',)``.
        **compile_kwargs: Passed to ``torch.compile`` (``mode``, ``backend``,
            ``dynamic``...).

    Returns:
        int: The number of blocks compiled.
    """
    names = set(block_names)
    blocks = [m for m in model.modules() if names.intersection(c.__name__ for c in type(m).__mro__)]
    for block in blocks:
        python_drop_rates(block)
        block.compile(**compile_kwargs)
    return len(blocks)


@HOOKS.register_module()
class LUTCompileTransformerBlocksHook(Hook):
    """Compile the transformer blocks of the trained model before training.

    Student and teacher encoders and the decoder of LUT (and the blocks of any
    mmpretrain / mmseg ViT) are compiled in place; see
    :func:`compile_transformer_blocks`. Registered in mmengine's root registry,
    so mmpretrain and mmseg configs can both use it. ``tools/train.py
    --compile`` adds it.

    Args:
        block_names (Iterable[str]): Class names of the blocks. Defaults to
            ``('TransformerEncoderLayer',)``.
        **compile_kwargs: Passed to ``torch.compile``.
    """

    def __init__(
        self, block_names: Iterable[str] = TRANSFORMER_BLOCK_NAMES, **compile_kwargs
    ) -> None:
        self.block_names = tuple(block_names)
        self.compile_kwargs = compile_kwargs

    def before_train(self, runner) -> None:
        """Compile; fail if the model has no such block (the option would do nothing)."""
        count = compile_transformer_blocks(runner.model, self.block_names, **self.compile_kwargs)
        if count == 0:
            raise ValueError(
                f"LUTCompileTransformerBlocksHook found no block of the classes {self.block_names} "
                f"in {type(runner.model).__name__}: pass block_names=[...] for this model"
            )
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.compile_kwargs.items())
        runner.logger.info(f"Compiled {count} transformer blocks: torch.compile({kwargs})")
