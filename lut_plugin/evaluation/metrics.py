"""Metrics of frozen features (plain PyTorch): weighted k-NN, linear probe, effective rank."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor, query: torch.Tensor,
             query_labels: torch.Tensor, num_classes: int | None = None, k: int = 20,
             temperature: float = 0.07) -> float:  # fmt: skip
    """Top-1 (%) of weighted k-NN (Wu et al. 2018): votes ``exp(cos / temperature)``.

    Args:
        bank (torch.Tensor): ``(N, D)`` features, e.g. of the train split.
        bank_labels (torch.Tensor): ``(N,)`` labels in ``[0, num_classes)``.
        query (torch.Tensor): ``(M, D)`` features to classify, e.g. of the val split.
        query_labels (torch.Tensor): ``(M,)`` their labels.
        num_classes (int, optional): Defaults to ``1 + max label``.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
    """
    bank_labels, query_labels = bank_labels.long(), query_labels.long()
    num_classes = num_classes or int(max(bank_labels.max(), query_labels.max())) + 1
    bank = F.normalize(bank.float(), dim=1)
    correct = 0
    for q, y in zip(query.float().split(1024), query_labels.split(1024)):
        cos, idx = (F.normalize(q, dim=1) @ bank.T).topk(min(k, len(bank)), dim=1)
        votes = torch.zeros(len(q), num_classes)
        votes.scatter_add_(1, bank_labels[idx], (cos / temperature).exp())
        correct += int((votes.argmax(dim=1) == y).sum())
    return 100.0 * correct / len(query_labels)


def linear_probe_top1(train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor,
                      val_labels: torch.Tensor, num_classes: int | None = None, epochs: int = 100,
                      batch_size: int = 256, lr: float = 0.1, seed: int = 0) -> float:  # fmt: skip
    """Top-1 (%) on ``val`` of MAE's linear probe (``BatchNorm1d(affine=False) -> Linear``,
    SGD with momentum 0.9 and cosine ``lr``) trained on ``train``, seeded by ``seed`` with the
    global random state kept; ``num_classes`` defaults to ``1 + max label``."""
    y = train_labels.long()
    num_classes = num_classes or int(max(y.max(), val_labels.max())) + 1
    total = max(1, epochs * math.ceil(len(train) / batch_size))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        probe = nn.Sequential(nn.BatchNorm1d(train.shape[1], affine=False, eps=1e-6),
                              nn.Linear(train.shape[1], num_classes))  # fmt: skip
        nn.init.trunc_normal_(probe[1].weight, std=0.01)
        nn.init.zeros_(probe[1].bias)
        optim = torch.optim.SGD(probe.parameters(), lr=lr, momentum=0.9)
        cosine = torch.optim.lr_scheduler.LambdaLR(
            optim, lambda step: 0.5 * (1 + math.cos(math.pi * step / total))
        )
        for _ in range(epochs):
            for idx in torch.randperm(len(train)).split(batch_size):
                if len(idx) > 1:  # BatchNorm needs two samples
                    F.cross_entropy(probe(train[idx].float()), y[idx]).backward()
                    optim.step()
                    optim.zero_grad()
                    cosine.step()
        with torch.no_grad():
            pred = probe.eval()(val.float()).argmax(dim=1)
    return 100.0 * int((pred == val_labels.long()).sum()) / len(val_labels)


def singular_value_spectrum(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Singular values of the centred ``(N, D)`` features, largest first (``normalize``: over
    the largest)."""
    values = torch.linalg.svdvals(features.double() - features.double().mean(dim=0))
    return values / values[0] if normalize and values[0] > 0 else values


def effective_rank(features: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalised singular values of the centred ``(N, D)``
    features (Roy & Vetterli, 2007): ``D`` when spread evenly, 1 when collapsed."""
    values = singular_value_spectrum(features, normalize=False)
    if values.sum() == 0:
        return 1.0  # identical samples
    p = values / values.sum()
    return float(torch.exp(-torch.special.xlogy(p, p).sum()))


def std_of_l2_normalized(features: torch.Tensor) -> float:
    """Mean std of the L2-normalised features (Jing et al. 2022): ``1 / sqrt(D)`` when spread
    evenly on the sphere, 0 when collapsed."""
    return float(F.normalize(features.float(), dim=1).std(dim=0).mean())


def evaluate_features(train: dict[str, torch.Tensor], train_labels: torch.Tensor,
                      val: dict[str, torch.Tensor], val_labels: torch.Tensor,
                      num_classes: int | None = None, k: int = 20, temperature: float = 0.07,
                      probe_epochs: int = 100, seed: int = 0) -> dict[str, dict]:  # fmt: skip
    """``{pooling: {knn_top1, linear_top1 (if probe_epochs), effective_rank, std_l2, dim}}``
    of ``{pooling: (N, D)}`` train and val features (collapse indicators: of val)."""
    out = {}
    for name, x in train.items():
        v, row = val[name], {}
        row["knn_top1"] = knn_top1(x, train_labels, v, val_labels, num_classes, k, temperature)
        if probe_epochs > 0:
            row["linear_top1"] = linear_probe_top1(
                x, train_labels, v, val_labels, num_classes, probe_epochs, seed=seed
            )
        out[name] = dict(row, effective_rank=effective_rank(v), std_l2=std_of_l2_normalized(v),
                         dim=int(x.shape[1]))  # fmt: skip
    return out
