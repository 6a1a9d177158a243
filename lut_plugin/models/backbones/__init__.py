from .lut_vit import CheckpointedLayers, LUTViT, TwoViewLatents
from .simmim_vit import LUTSimMIMViT, SimMIMMasks

__all__ = ["CheckpointedLayers", "LUTSimMIMViT", "LUTViT", "SimMIMMasks", "TwoViewLatents"]
