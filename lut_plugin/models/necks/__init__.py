from .projection_mlp import LUTProjectionMLP

__all__ = ["LUTProjectionMLP"]
