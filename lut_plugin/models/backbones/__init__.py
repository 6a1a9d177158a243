from .lut_vit import CheckpointedLayers, LUTViT, TwoViewLatents
from .simmim_vit import LUTSimMIMViT, SimMIMMasks, SimMIMViews

__all__ = [
    "CheckpointedLayers",
    "LUTViT",
    "TwoViewLatents",
    "LUTSimMIMViT",
    "SimMIMMasks",
    "SimMIMViews",
]
