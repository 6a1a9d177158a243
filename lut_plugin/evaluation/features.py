"""Pooled ViT features of labelled images."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

#: The two poolings evaluated: the cls token and the mean of the patch tokens (what LUT's
#: broader-context loss trains).
POOLINGS: tuple[str, ...] = ("cls", "mean")


def pool_tokens(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{'cls': tokens[:, 0], 'mean': mean of tokens[:, 1:]}`` of ``(B, 1 + L, C)`` tokens."""
    if tokens.dim() != 3 or tokens.shape[1] < 2:
        raise ValueError(
            f"tokens must be (batch, 1 + num_patches, dim) with a cls token first, got "
            f"{tuple(tokens.shape)}"
        )
    return {"cls": tokens[:, 0], "mean": tokens[:, 1:].mean(dim=1)}


@torch.no_grad()
def extract_features(
    encode: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Run ``encode`` over labelled batches and pool its tokens both ways.

    Args:
        encode (Callable): Maps ``(B, 3, H, W)`` images to ``(B, 1 + L, C)`` tokens.
        batches (Iterable): ``(images, labels)`` pairs.

    Returns:
        tuple[dict[str, torch.Tensor], torch.Tensor]: ``{pooling: (N, C)}`` and ``(N,)``
        labels, in batch order.
    """
    feats: dict[str, list[torch.Tensor]] = {p: [] for p in POOLINGS}
    labels = []
    for images, batch_labels in batches:
        for pooling, value in pool_tokens(encode(images)).items():
            feats[pooling].append(value.float().cpu())
        labels.append(batch_labels.long().cpu())
    if not labels:
        raise ValueError("no labelled images to extract features from")
    return {p: torch.cat(v) for p, v in feats.items()}, torch.cat(labels)
