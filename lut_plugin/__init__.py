"""LUT (Learning with Unmasked Tokens, ECCV 2024) for OpenMMLab.

``import lut_plugin`` registers LUT's components in mmpretrain's registries (and, when
mmsegmentation is installed, its segmentation pieces in mmseg's), LUT's runtime pieces
(``LUTRunner``, ``LUTCheckpointHook``, ``LUTSeededSampler``, ``LUTStepSeedHook``,
``Pretrained`` in the ``lut_plugin`` scope) in mmengine's, and allow-lists the few
non-tensor types of mmengine checkpoints for ``torch.load(weights_only=True)`` (see
:mod:`lut_plugin.checkpoint`).
"""

import importlib.util

from . import checkpoint, core, mmpretrain  # noqa: F401
from .model_index import MODEL_INDEX  # noqa: F401  (puts LUT's models in mmpretrain's hub)

# mmseg is optional: without it the pre-training side still works.
if importlib.util.find_spec("mmseg") is not None:
    from . import mmseg  # noqa: F401

__version__ = "0.1.0"
