"""Moved to :mod:`lut_plugin.datasets`; imported here until ``lut_plugin/__init__`` does."""

from lut_plugin import datasets  # noqa: F401
