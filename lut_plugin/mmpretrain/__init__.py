"""mmpretrain adapters: importing this registers LUT's components in mmpretrain."""

from . import datasets  # noqa: F401
