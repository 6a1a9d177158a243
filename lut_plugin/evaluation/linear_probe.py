"""Linear probe on frozen features (MAE's protocol, on pre-computed features)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def linear_probe_top1(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    val_features: torch.Tensor,
    val_labels: torch.Tensor,
    num_classes: int | None = None,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> float:
    """Train ``BatchNorm1d(affine=False) -> Linear`` on fixed features; top-1 on ``val``.

    MAE's linear probe: a parameter-free BatchNorm in front of the linear classifier
    (weights ~ trunc-normal(0.01), zero bias), no weight decay, cross-entropy, momentum SGD
    with a cosine learning-rate decay. The features are computed once (no augmentation),
    so a probe of a 96-d encoder on a few thousand images takes about a second on a CPU.
    The global random state is left untouched (a forked generator seeded with ``seed``),
    so a probe inside a training run does not change the run.

    Args:
        train_features (torch.Tensor): ``(N, D)``.
        train_labels (torch.Tensor): ``(N,)`` integer labels.
        val_features (torch.Tensor): ``(M, D)``.
        val_labels (torch.Tensor): ``(M,)``.
        num_classes (int, optional): Defaults to ``1 + max label`` over both splits.
        epochs (int): Passes over the training features. Defaults to 100.
        batch_size (int): Defaults to 256.
        lr (float): Peak learning rate of SGD (momentum 0.9). Defaults to 0.1.
        weight_decay (float): Defaults to 0 (as MAE).
        seed (int): Initialisation and shuffling seed. Defaults to 0.

    Returns:
        float: Validation accuracy in percent.
    """
    for name, x, y in (("train", train_features, train_labels), ("val", val_features, val_labels)):
        if x.dim() != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise ValueError(
                f"{name} features must be (N, D) with N > 0 and labels (N,), got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
    if train_features.shape[1] != val_features.shape[1]:
        raise ValueError("train and val features differ in width")
    if train_features.shape[0] < 2:
        raise ValueError("a linear probe needs at least 2 training samples (BatchNorm)")
    x_train, y_train = train_features.float(), train_labels.long()
    if num_classes is None:
        num_classes = int(max(y_train.max(), val_labels.max())) + 1
    dim, n = x_train.shape[1], x_train.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(1, epochs * steps_per_epoch)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        probe = nn.Sequential(
            nn.BatchNorm1d(dim, affine=False, eps=1e-6), nn.Linear(dim, num_classes)
        )
        nn.init.trunc_normal_(probe[1].weight, std=0.01)
        nn.init.zeros_(probe[1].bias)
        optimizer = torch.optim.SGD(
            probe.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total))
        )
        probe.train()
        for _ in range(epochs):
            order = torch.randperm(n)
            for idx in order.split(batch_size):
                if idx.numel() < 2:  # BatchNorm needs two samples
                    continue
                loss = F.cross_entropy(probe(x_train[idx]), y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        probe.eval()
        with torch.no_grad():
            pred = probe(val_features.float()).argmax(dim=1)
    return float((pred == val_labels.long()).float().mean() * 100)
