"""mmseg models of the LUT plugin (registered in mmseg's ``MODELS``)."""

from .lut_mae import LUTMAE

__all__ = ["LUTMAE"]
