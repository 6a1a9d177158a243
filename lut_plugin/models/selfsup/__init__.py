from .lut import LUT, LUTOutputs
from .lut_simmim import LUTSimMIM

__all__ = ["LUT", "LUTOutputs", "LUTSimMIM"]
