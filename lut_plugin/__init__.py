"""LUT (Learning with Unmasked Tokens, ECCV 2024) for OpenMMLab.

``import lut_plugin`` registers LUT's components in mmpretrain's registries and,
when mmsegmentation is installed, its segmentation pieces in mmseg's.
"""

from . import (
    core,  # noqa: F401
    mmpretrain,  # noqa: F401
)

__version__ = "0.1.0"
