"""Dimensional-collapse indicators of a feature matrix."""

from __future__ import annotations

import torch

from lut_plugin.analysis import effective_rank as _effective_rank_of_values
from lut_plugin.analysis import singular_value_spectrum


def effective_rank(features: torch.Tensor) -> float:
    """Effective rank of ``(num_samples, dim)`` features (Roy & Vetterli, 2007).

    ``exp(H(p))`` with ``p`` the singular values of the centred features divided by their
    sum and ``H`` the Shannon entropy: ``dim`` for features spread evenly over every
    direction, 1 when they vary along a single direction (complete dimensional collapse).

    Args:
        features (torch.Tensor): ``(num_samples, dim)``.

    Returns:
        float: A value in ``[1, min(num_samples, dim)]``.
    """
    values = singular_value_spectrum(features, normalize=False)
    if not bool((values > 0).any()):
        return 1.0  # every sample identical: no direction of variation left
    return _effective_rank_of_values(values)


def std_of_l2_normalized(features: torch.Tensor) -> float:
    """Mean over dimensions of the std of the L2-normalised features (lightly's monitor).

    About ``1 / sqrt(dim)`` for features spread uniformly on the sphere, 0 when every
    sample maps to the same direction (Jing et al. 2022; lightly's
    ``std_of_l2_normalized``).

    Args:
        features (torch.Tensor): ``(num_samples, dim)``, at least two samples.

    Returns:
        float: The mean standard deviation.
    """
    from lightly.utils.debug import std_of_l2_normalized as lightly_std  # lazy import

    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (num_samples >= 2, dim), got {tuple(features.shape)}")
    return float(lightly_std(features.float()))
