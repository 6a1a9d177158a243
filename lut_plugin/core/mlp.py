"""The projector / predictor MLP of LUT (METHOD.md step 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from lightly.models.modules.heads import ProjectionHead

NORMS: dict[str, Callable[[int], nn.Module] | None] = {
    "bn": nn.BatchNorm1d,
    "syncbn": nn.SyncBatchNorm,
    "ln": nn.LayerNorm,
    "none": None,
}
ACTS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


def projection_mlp_blocks(
    in_dim: int,
    hidden_dim: int = 4096,
    out_dim: int | None = None,
    depth: int = 2,
    norm: str = "bn",
    act: str = "relu",
    bias: bool = False,
) -> list[tuple]:
    """Block spec of LUT's MLP for lightly's ``ProjectionHead``.

    See :func:`build_projection_mlp` for the arguments.
    """
    norm_key, act_key = str(norm).lower(), str(act).lower()
    if norm_key not in NORMS:
        raise ValueError(
            f"unknown norm {norm!r} for the projection MLP; choose one of {list(NORMS)}"
        )
    if act_key not in ACTS:
        raise ValueError(f"unknown act {act!r} for the projection MLP; choose one of {list(ACTS)}")
    if depth < 1:
        raise ValueError(f"projection MLP depth must be >= 1, got {depth}")
    if min(in_dim, hidden_dim) < 1 or (out_dim is not None and out_dim < 1):
        raise ValueError(
            f"projection MLP widths must be positive: {in_dim}, {hidden_dim}, {out_dim}"
        )
    out_dim = in_dim if out_dim is None else out_dim
    norm_layer, act_layer = NORMS[norm_key], ACTS[act_key]
    dims = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
    blocks = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == depth - 1
        block_norm = None if last or norm_layer is None else norm_layer(d_out)
        block_act = None if last else act_layer()
        blocks.append((d_in, d_out, block_norm, block_act, bias))
    return blocks


def build_projection_mlp(
    in_dim: int,
    hidden_dim: int = 4096,
    out_dim: int | None = None,
    depth: int = 2,
    norm: str = "bn",
    act: str = "relu",
    bias: bool = False,
) -> ProjectionHead:
    """``Linear -> norm -> act`` repeated ``depth - 1`` times, then ``Linear``.

    The default is LUT's head: ``Linear(D, 4096, bias=False) -> BN -> ReLU ->
    Linear(4096, D, bias=False)``. Built as lightly's ``ProjectionHead``, so the
    layers sit at ``layers.{0,1,3}`` as in the reference implementation.

    Args:
        in_dim (int): Input width.
        hidden_dim (int): Width of the hidden layers. Defaults to 4096.
        out_dim (int, optional): Output width. Defaults to ``in_dim``.
        depth (int): Number of linear layers, at least 1. Defaults to 2.
        norm (str): ``'bn'``, ``'syncbn'``, ``'ln'`` or ``'none'``. Defaults to ``'bn'``.
        act (str): ``'relu'`` or ``'gelu'``. Defaults to ``'relu'``.
        bias (bool): Whether the linear layers have a bias. Defaults to False.

    Returns:
        ProjectionHead: The MLP.
    """
    # Imported here: importing lightly's models costs seconds in every process.
    from lightly.models.modules.heads import ProjectionHead

    return ProjectionHead(
        projection_mlp_blocks(in_dim, hidden_dim, out_dim, depth, norm, act, bias)
    )
