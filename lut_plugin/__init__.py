"""LUT (ECCV 2024) for OpenMMLab: importing it registers LUT's components, the opt-in
``runtime``, the model-hub entries and, with mmsegmentation installed, the ``mmseg`` adapters."""

from . import core, datasets, evaluation, lr_scaling, models, runtime, visualization  # noqa: F401
from .model_index import MODEL_INDEX  # noqa: F401  (puts LUT's models in mmpretrain's hub)

try:
    import mmseg as _mmseg
except ImportError:  # without the `seg` extra the pre-training side works alone
    _mmseg = None
if _mmseg is not None:
    from . import mmseg  # noqa: F401

__version__ = "0.1.0"
