from .lut import LUT, LUTOutputs
from .lut_simmim import LUTSimMIM, masked_token_mean

__all__ = ["LUT", "LUTOutputs", "LUTSimMIM", "masked_token_mean"]
