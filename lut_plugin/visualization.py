"""Reconstruction pictures of MIM models: LUT (MAE and SimMIM flavours), MAE, SimMIM."""

from __future__ import annotations

from typing import NamedTuple

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

GREY = 64  # the pixel value of hidden patches (dark: toy backgrounds are light grey)


class Reconstruction(NamedTuple):
    """Normalised reconstruction, ``(B, L)`` masks (``mask2``: LUT's view 2)."""

    rec: torch.Tensor
    mask1: torch.Tensor
    mask2: torch.Tensor | None


def undo_norm_pix(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Inverse of ``MAEPretrainHead.construct_target`` with ``norm_pix=True``.

    Args:
        pred (torch.Tensor): ``(B, L, p*p*3)`` predictions of normalised patches.
        target (torch.Tensor): ``(B, L, p*p*3)`` patches of the input image.
        eps (float): The head's epsilon. Defaults to 1e-6.
    """
    return pred * (target.var(-1, keepdim=True) + eps) ** 0.5 + target.mean(-1, keepdim=True)


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor) -> Reconstruction:
    """:class:`Reconstruction` of ``images`` (as both views for LUT), masked as in training.

    Args:
        model (nn.Module): A built LUT, LUTSimMIM, MAE or SimMIM model.
        images (torch.Tensor): ``(B, 3, H, W)`` images, normalised as the model's inputs.
    """
    backbone, neck, head = model.backbone, getattr(model, "neck", None), model.head
    if neck is None or head is None:
        raise ValueError(f"{type(model).__name__} has no decoder (w_mim = 0?): nothing to show")
    mask2 = pred = rec = None
    if hasattr(backbone, "forward_views"):  # LUT (both flavours), SimMIM on LUTSimMIMViT
        z1, _, masks = backbone.forward_views(images, images)
        mask1, mask2 = masks.mask1, masks.mask2 if hasattr(model, "broader_context") else None
        if hasattr(head, "patchify"):
            pred = neck(z1, masks.ids_restore1)
        else:
            rec = neck(backbone.tokens_to_featmap(z1))
    elif hasattr(head, "patchify"):  # mmpretrain's MAE
        latent, mask1, ids_restore = backbone(images, mask=True)
        pred = neck(latent, ids_restore)
    else:  # mmpretrain's SimMIM on another encoder: 60 % of the head's patches at random
        side = images.shape[-1] // head.patch_size
        mask1 = (torch.rand(len(images), side * side, device=images.device) < 0.6).float()
        rec = neck(backbone(images, mask1.reshape(-1, side, side))[0])
    if pred is not None:
        if head.norm_pix:
            pred = undo_norm_pix(pred, head.patchify(images))
        rec = head.unpatchify(pred)
    return Reconstruction(rec.float(), mask1, mask2)


def reconstruction_grid(model: nn.Module, images: torch.Tensor, seed: int = 0, scale: int = 1):
    """``(rows * (H * scale + 2), panels * (W * scale + 2), 3)`` uint8 RGB, a row per image:
    the image, view 1, the reconstruction, it pasted into view 1, for LUT view 2 (RNG kept).

    Args:
        model (nn.Module): The model (a wrapped one is unwrapped).
        images (torch.Tensor): ``(B, 3, H, W)`` normalised images.
        seed (int): Seed of the masks. Defaults to 0.
        scale (int): Upscaling factor (nearest neighbour). Defaults to 1.
    """
    model = model.module if is_model_wrapper(model) else model
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[images.device] if images.is_cuda else []):
        torch.manual_seed(seed)
        out = reconstruct(model, images)
    model.train(was_training)
    mean, std = model.data_preprocessor.mean.to(images), model.data_preprocessor.std.to(images)
    image = (images * std + mean).clamp(0, 255)
    rec = (out.rec * std + mean).clamp(0, 255)
    side = int(out.mask1.shape[1] ** 0.5)

    def pixels(mask):  # (B, L) patches -> (B, 1, H, W) pixels
        return nn.functional.interpolate(mask.float().view(-1, 1, side, side), image.shape[-2:])

    m1 = pixels(out.mask1)
    panels = [image, image * (1 - m1) + GREY * m1, rec, image * (1 - m1) + rec * m1]
    if out.mask2 is not None:
        panels.append(image * (1 - pixels(out.mask2)) + GREY * pixels(out.mask2))
    panels = torch.stack(panels, dim=1).round().byte().cpu()  # (B, P, 3, H, W)
    panels = panels.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    panels = nn.functional.pad(panels, (1, 1, 1, 1), value=255)  # a white frame
    b, p, c, h, w = panels.shape
    return panels.permute(0, 3, 1, 4, 2).reshape(b * h, p * w, c).numpy()


@HOOKS.register_module()
class ReconstructionVisualizerHook(Hook):
    """Every ``interval`` epochs and after the last, :func:`reconstruction_grid` of the run's
    first ``num_images`` images to ``runner.visualizer.add_image`` (docs/visualization.md).

    Args:
        interval (int): Epochs between pictures. Defaults to 10.
        num_images (int): Images (rows) per picture. Defaults to 8.
        seed (int): Seed of the masks. Defaults to 0.
        scale (int): Upscaling factor. Defaults to 4.
    """

    def __init__(self, interval: int = 10, num_images: int = 8, seed: int = 0, scale: int = 4):
        self.interval, self.num_images, self.seed, self.scale = interval, num_images, seed, scale
        self.images: torch.Tensor | None = None

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, "neck", None) is None or getattr(model, "head", None) is None:
            raise ValueError(f"ReconstructionVisualizerHook: {type(model).__name__} has no decoder")

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.images is None and data_batch is not None:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            with torch.random.fork_rng(devices=[]):
                inputs = model.data_preprocessor(data_batch, False)["inputs"]
            inputs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            self.images = inputs[: self.num_images].detach().clone()

    def after_train_epoch(self, runner) -> None:
        if self.images is None or not is_main_process():
            return
        if self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner):
            grid = reconstruction_grid(runner.model, self.images, self.seed, self.scale)
            runner.visualizer.add_image("reconstruction", grid, step=runner.epoch + 1)
