from .backbones import *  # noqa: F403
from .losses import *  # noqa: F403
from .necks import *  # noqa: F403
from .selfsup import *  # noqa: F403
from .utils import *  # noqa: F403
