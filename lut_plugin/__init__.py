"""LUT (Learning with Unmasked Tokens, ECCV 2024) for OpenMMLab.

``import lut_plugin`` registers LUT's components in mmpretrain's registries and,
when mmsegmentation is installed, its segmentation pieces in mmseg's. It also
lets ``torch.load(weights_only=True)`` (torch >= 2.6) read mmengine checkpoints,
so ``--resume`` works.
"""

import importlib.util

from . import core, mmpretrain  # noqa: F401
from .model_index import MODEL_INDEX  # noqa: F401  (puts LUT's models in mmpretrain's hub)
from .utils import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

# mmseg is optional: without it the pre-training side still works.
if importlib.util.find_spec("mmseg") is not None:
    from . import mmseg  # noqa: F401

__version__ = "0.1.0"
