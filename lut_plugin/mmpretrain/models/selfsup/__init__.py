from .lut import LUT, LUTOutputs

__all__ = ["LUT", "LUTOutputs"]
