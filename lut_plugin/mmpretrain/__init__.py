"""mmpretrain adapters: importing this registers LUT's components in mmpretrain."""

from . import engine, models  # noqa: F401
