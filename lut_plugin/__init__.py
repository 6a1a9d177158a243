"""LUT (Learning with Unmasked Tokens, ECCV 2024) for OpenMMLab.

``import lut_plugin`` registers LUT's components in mmpretrain's registries (and, when
mmsegmentation is installed, its segmentation pieces in mmseg's), and the opt-in
reliability runtime (``SafeResumeRunner`` and its hooks, see :mod:`lut_plugin.runtime`) in
mmengine's.
"""

import importlib.util

from . import core, mmpretrain, runtime  # noqa: F401
from .model_index import MODEL_INDEX  # noqa: F401  (puts LUT's models in mmpretrain's hub)

# mmseg is optional: without it the pre-training side still works.
if importlib.util.find_spec("mmseg") is not None:
    from . import mmseg  # noqa: F401

__version__ = "0.1.0"
