"""LUT's components, registered in mmpretrain's ``MODELS``."""

from mmpretrain.registry import MODELS

from lut_plugin.core import BroaderContextLoss

from .backbones import *  # noqa: F403
from .necks import *  # noqa: F403
from .selfsup import *  # noqa: F403
from .utils import *  # noqa: F403

MODELS.register_module(module=BroaderContextLoss)
