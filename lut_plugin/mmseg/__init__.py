"""mmsegmentation adapters: the ``LUTMAE`` backbone and the toy ADE20K-layout dataset."""
# ruff: noqa: F401

try:
    import mmseg
except ImportError as exc:
    raise ImportError(
        'lut_plugin.mmseg needs mmseg, which is not installed: pip install "lut-plugin[seg]"'
    ) from exc

from .lut_mae import LUTMAE
from .toy_ade import LUTToyADE20KDataset
