from .lut_vit import LUTViT, TwoViewLatents

__all__ = ["LUTViT", "TwoViewLatents"]
