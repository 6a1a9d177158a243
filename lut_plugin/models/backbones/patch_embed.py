"""mmcv's ``PatchEmbed`` with its convolution as one matrix product."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import PatchEmbed

from lut_plugin.core import gather_tokens


def embed_patches(patch_embed: PatchEmbed, x: torch.Tensor, grid: tuple[int, int],
                  ids: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Patch tokens ``(B, L, C)``, or ``(B, K, C)`` of the ``(B, K)`` patch ``ids`` only, as one
    matrix product when the image tiles exactly (on tensor cores: cuDNN's 3-channel convolution
    took 5 % of a ViT-B LUT step on an H200), else by mmcv's forward; another grid than
    ``grid`` is a ``ValueError``."""
    conv = patch_embed.projection
    (ph, pw), (h, w) = conv.kernel_size, grid
    tiles = x.dim() == 4 and x.shape[1] == conv.in_channels and x.shape[-2:] == (h * ph, w * pw)
    plain = patch_embed.norm is None and conv.stride == conv.kernel_size and conv.groups == 1
    if tiles and plain and conv.padding == (0, 0) and conv.dilation == (1, 1):
        b, c = x.shape[:2]
        grid_patches = x.reshape(b, c, h, ph, w, pw)
        if ids is None:
            patches = grid_patches.permute(0, 2, 4, 1, 3, 5)
        else:  # reads only the selected patches: (B, K, c, ph, pw)
            rows = torch.arange(b, device=x.device).unsqueeze(1)
            patches = grid_patches[rows, :, ids // w, :, ids % w, :]
        return F.linear(patches.reshape(b, -1, c * ph * pw), conv.weight.flatten(1), conv.bias)
    tokens, patch_grid = patch_embed(x)
    if tuple(patch_grid) != tuple(grid):
        raise ValueError(
            f"input gives a {tuple(patch_grid)} patch grid, the encoder was built for "
            f"{tuple(grid)} (img_size / patch_size)"
        )
    return tokens if ids is None else gather_tokens(tokens, ids)
