"""Every frozen-feature metric for one train/val split."""

from __future__ import annotations

import torch

from .collapse import effective_rank, std_of_l2_normalized
from .knn import knn_top1
from .linear_probe import linear_probe_top1


def evaluate_features(
    train_features: dict[str, torch.Tensor],
    train_labels: torch.Tensor,
    val_features: dict[str, torch.Tensor],
    val_labels: torch.Tensor,
    num_classes: int | None = None,
    k: int = 20,
    temperature: float = 0.07,
    probe_epochs: int = 100,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """k-NN and linear-probe top-1 plus collapse indicators, per pooling.

    Args:
        train_features (dict[str, torch.Tensor]): ``{pooling: (N, D)}`` bank / probe
            training features.
        train_labels (torch.Tensor): ``(N,)``.
        val_features (dict[str, torch.Tensor]): ``{pooling: (M, D)}``, same poolings.
        val_labels (torch.Tensor): ``(M,)``.
        num_classes (int, optional): Defaults to ``1 + max label``.
        k (int): k-NN neighbours. Defaults to 20.
        temperature (float): k-NN vote temperature. Defaults to 0.07.
        probe_epochs (int): Linear-probe epochs; 0 skips the probe. Defaults to 100.
        seed (int): Linear-probe seed. Defaults to 0.

    Returns:
        dict[str, dict[str, float]]: ``{pooling: {'knn_top1', 'linear_top1',
        'effective_rank', 'std_l2', 'dim'}}`` (accuracies in percent; collapse indicators of
        the validation features; ``linear_top1`` absent when ``probe_epochs == 0``).
    """
    if set(train_features) != set(val_features):
        raise ValueError(
            f"train poolings {sorted(train_features)} differ from val poolings "
            f"{sorted(val_features)}"
        )
    if num_classes is None:
        num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    results = {}
    for pooling, train in train_features.items():
        val = val_features[pooling]
        row = {
            "knn_top1": knn_top1(train, train_labels, val, val_labels, num_classes, k, temperature)
        }
        if probe_epochs > 0:
            row["linear_top1"] = linear_probe_top1(
                train, train_labels, val, val_labels, num_classes, epochs=probe_epochs, seed=seed
            )
        row["effective_rank"] = effective_rank(val)
        row["std_l2"] = std_of_l2_normalized(val)
        row["dim"] = int(val.shape[1])
        results[pooling] = row
    return results
