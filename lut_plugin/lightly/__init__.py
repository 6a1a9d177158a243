"""LUT for lightly / plain PyTorch loops: :mod:`lut_plugin.core`'s pieces, the views' masks in
lightly's convention and LUT's two views as lightly transforms (``examples/lightly_lut.py``)."""

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

__all__ = ["BroaderContextLoss", "LUTTransform", "LUTView1Transform", "LUTView2Transform",
           "MomentumTeacher", "ProjectionMLP", "cosine_momentum",
           "disjoint_token_masks"]  # fmt: skip
