from .data_preprocessor import LUTDataPreprocessor

__all__ = ["LUTDataPreprocessor"]
