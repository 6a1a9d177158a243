from .lut_vit import LUTViT, TwoViewLatents
from .simmim_vit import SimMIMMasks, SimMIMViews, SimMIMViT

__all__ = ["LUTViT", "TwoViewLatents", "SimMIMMasks", "SimMIMViT", "SimMIMViews"]
