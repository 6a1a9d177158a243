"""Deprecated: LUT updates its teacher itself after each optimiser step."""

from __future__ import annotations

import logging
import warnings

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class MomentumTeacherHook(Hook):
    """Does nothing; kept so that configs naming it still load.

    LUT updates its momentum teacher itself, after each optimiser step.
    Remove ``dict(type='MomentumTeacherHook')`` from ``custom_hooks``.
    """

    def __init__(self) -> None:
        message = (
            "MomentumTeacherHook is deprecated and does nothing: LUT updates its teacher "
            "after each optimiser step. Remove it from custom_hooks"
        )
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        print_log(message, logger="current", level=logging.WARNING)
