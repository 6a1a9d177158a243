from .lut_vit import LUTViT, TwoViewLatents
from .simmim_vit import LUTSimMIMViT, SimMIMMasks, SimMIMViews

__all__ = ["LUTViT", "TwoViewLatents", "SimMIMMasks", "LUTSimMIMViT", "SimMIMViews"]
