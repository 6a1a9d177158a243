"""LUT (Learning with Unmasked Tokens, ECCV 2024) for OpenMMLab.

``import lut_plugin`` registers LUT's models, transforms, datasets and hooks in mmpretrain's
registries, the opt-in reliability runtime (``SafeResumeRunner`` and its hooks, see
:mod:`lut_plugin.runtime`) in mmengine's, LUT's configs in mmpretrain's model hub and, when
mmsegmentation is installed, the segmentation pieces in mmseg's. ``lut_plugin.lightly`` (with
lightly installed) serves plain PyTorch training loops.
"""

from . import core, datasets, evaluation, lr_scaling, models, runtime, visualization  # noqa: F401
from .model_index import MODEL_INDEX  # noqa: F401  (puts LUT's models in mmpretrain's hub)

try:
    import mmseg as _mmseg
except ImportError:  # without the `seg` extra the pre-training side works alone
    _mmseg = None
if _mmseg is not None:
    from . import mmseg  # noqa: F401

__version__ = "0.1.0"
