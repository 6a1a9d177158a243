"""LUT for OpenMMLab."""
