from .lut_vit import CheckpointedLayers, LUTViT, TwoViewLatents
from .mff_vit import LUTMFFViT
from .simmim_vit import LUTSimMIMViT, SimMIMMasks

__all__ = [
    "CheckpointedLayers",
    "LUTMFFViT",
    "LUTSimMIMViT",
    "LUTViT",
    "SimMIMMasks",
    "TwoViewLatents",
]
