"""LUT for lightly / plain PyTorch training loops: :mod:`lut_plugin.core`'s pieces, view 1's
and view 2's masks in lightly's convention, and LUT's two views as a lightly transform.
``examples/lightly_lut.py`` trains LUT with them and lightly's ``MaskedVisionTransformerTIMM``
/ ``MaskedVisionTransformerDecoderTIMM``.
"""

try:
    import lightly  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "lut_plugin.lightly needs lightly, which is not installed: "
        'pip install "lut-plugin[lightly]"'
    ) from exc


from lut_plugin.core import BroaderContextLoss, MomentumTeacher, ProjectionMLP, cosine_momentum

from .masking import disjoint_token_masks
from .transforms import LUTTransform, LUTView1Transform, LUTView2Transform

__all__ = [
    "BroaderContextLoss",
    "LUTTransform",
    "LUTView1Transform",
    "LUTView2Transform",
    "MomentumTeacher",
    "ProjectionMLP",
    "cosine_momentum",
    "disjoint_token_masks",
]
