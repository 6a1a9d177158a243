"""Weighted k-NN classification of frozen features (DINO / lightly protocol)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(features: torch.Tensor, labels: torch.Tensor | None, name: str) -> None:
    if features.dim() != 2:
        raise ValueError(f"{name} features must be (num_samples, dim), got {tuple(features.shape)}")
    if labels is not None and labels.shape != (features.shape[0],):
        raise ValueError(
            f"{name} labels must be ({features.shape[0]},) to match the features, got "
            f"{tuple(labels.shape)}"
        )


@torch.no_grad()
def knn_predict_labels(
    bank_features: torch.Tensor,
    bank_labels: torch.Tensor,
    query_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Predicted class of every query: a vote of its ``k`` most cosine-similar bank samples.

    Each neighbour votes for its label with weight ``exp(cos / temperature)`` (lightly's
    ``knn_predict``, as in DINO and Wu et al. 2018). Features are L2-normalised here.
    ``k`` larger than the bank is clipped to the bank size.

    Args:
        bank_features (torch.Tensor): ``(N, D)`` labelled features (e.g. the train split).
        bank_labels (torch.Tensor): ``(N,)`` integer labels in ``[0, num_classes)``.
        query_features (torch.Tensor): ``(M, D)`` features to classify.
        num_classes (int): Number of classes.
        k (int): Neighbours per query. Defaults to 20.
        temperature (float): Softmax temperature of the votes. Defaults to 0.07.
        chunk_size (int): Queries per similarity matrix (bounds memory). Defaults to 1024.

    Returns:
        torch.Tensor: ``(M,)`` predicted labels.
    """
    from lightly.utils.benchmarking import knn_predict  # lazy: lightly imports slowly

    _check(bank_features, bank_labels, "bank")
    _check(query_features, None, "query")
    if bank_features.shape[1] != query_features.shape[1]:
        raise ValueError(
            f"bank features are {bank_features.shape[1]}-d, query features "
            f"{query_features.shape[1]}-d"
        )
    if k < 1 or temperature <= 0:
        raise ValueError(f"k must be >= 1 and temperature > 0, got k={k}, T={temperature}")
    labels = bank_labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"bank labels must lie in [0, {num_classes}), got {labels.unique()}")
    bank = F.normalize(bank_features.float(), dim=1).t().contiguous()
    k = min(k, bank.shape[1])
    preds = [
        knn_predict(F.normalize(q.float(), dim=1), bank, labels, num_classes, k, temperature)[:, 0]
        for q in query_features.split(chunk_size)
    ]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def knn_top1(
    bank_features: torch.Tensor,
    bank_labels: torch.Tensor,
    query_features: torch.Tensor,
    query_labels: torch.Tensor,
    num_classes: int | None = None,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy (%) of :func:`knn_predict_labels` on labelled queries.

    Args:
        bank_features (torch.Tensor): ``(N, D)`` labelled bank (e.g. train split).
        bank_labels (torch.Tensor): ``(N,)`` bank labels.
        query_features (torch.Tensor): ``(M, D)`` queries (e.g. validation split).
        query_labels (torch.Tensor): ``(M,)`` true labels of the queries.
        num_classes (int, optional): Defaults to ``1 + max label`` over both splits.
        k (int): Neighbours per query. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.

    Returns:
        float: Accuracy in percent.
    """
    _check(query_features, query_labels, "query")
    if query_labels.numel() == 0:
        raise ValueError("no query samples to evaluate")
    if num_classes is None:
        num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    pred = knn_predict_labels(
        bank_features, bank_labels, query_features, num_classes, k, temperature
    )
    return float((pred == query_labels.long()).float().mean() * 100)
