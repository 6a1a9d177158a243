"""LUT: a MIM method (MAE here) plus the broader-context branch on the unmasked tokens."""

from __future__ import annotations

import math
import weakref
from typing import NamedTuple

import torch
from mmengine.logging import MessageHub
from mmpretrain.models.necks import MAEPretrainDecoder
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from lut_plugin.core import MomentumTeacher, cosine_momentum, fuse_linear_gelu

from ..backbones.lut_vit import CheckpointedLayers


class LUTOutputs(NamedTuple):
    """One LUT step's masks, unweighted losses, predictions and targets (None: not computed)."""

    masks: tuple
    loss_mim: torch.Tensor | None = None
    loss_bc: torch.Tensor | None = None
    p1: torch.Tensor | None = None
    p2: torch.Tensor | None = None
    t1: torch.Tensor | None = None
    t2: torch.Tensor | None = None


@MODELS.register_module()
class LUT(BaseSelfSupervisor):
    """`Learning with Unmasked Tokens Drives Stronger Vision Learners
    <https://arxiv.org/abs/2310.13593>`_ (METHOD.md); the teacher follows every optimiser step
    that trains the model (docs/training.md). A MIM flavour is the backbone's ``forward_views``
    / ``forward_full`` plus :meth:`mim_loss` and :meth:`pool`.

    Args:
        backbone (dict): ``LUTViT`` config (or another flavour's two-view encoder).
        neck (dict, optional): MIM decoder (``MAEPretrainDecoder``); needed if ``w_mim > 0``.
        head (dict, optional): Reconstruction head (``MAEPretrainHead``); needed if ``w_mim > 0``.
        projector (dict, optional): Projector ``h`` (``LUTProjectionMLP``); needed if ``w_bc > 0``.
        predictor (dict, optional): Predictor ``q`` (``LUTProjectionMLP``); needed if ``w_bc > 0``.
        loss_bc (dict, optional): Defaults to ``dict(type='BroaderContextLoss')``.
        w_mim (float): Weight of the reconstruction loss. Defaults to 1.0.
        w_bc (float): Weight of the broader-context loss. Defaults to 0.25.
        base_momentum (float): Teacher momentum at the first iteration. Defaults to 0.996.
        end_momentum (float): Teacher momentum at the last iteration. Defaults to 1.0.
        fuse_teacher_gelu (bool): Teacher MLPs as ``LinearGELU`` (docs/training.md). Default: off.
        pretrained (str, optional): Checkpoint loaded weights-only and strictly, for ``init_cfg``.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, head: dict | None = None,
                 projector: dict | None = None, predictor: dict | None = None,
                 loss_bc: dict | None = None, w_mim: float = 1.0, w_bc: float = 0.25,
                 base_momentum: float = 0.996, end_momentum: float = 1.0,
                 fuse_teacher_gelu: bool = False, pretrained: str | None = None,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | list[dict] | None = None) -> None:  # fmt: skip
        self.w_mim, self.w_bc = float(w_mim), float(w_bc)
        for name, value in (("w_mim", self.w_mim), ("w_bc", self.w_bc)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative loss weight, got {value}")
        if self.w_mim == 0 and self.w_bc == 0:
            raise ValueError("w_mim and w_bc are both 0: LUT would have nothing to learn")
        if self.w_mim > 0 and (neck is None or head is None):
            raise ValueError("w_mim > 0 needs a decoder (neck) and a reconstruction head (head)")
        if self.w_bc > 0 and (projector is None or predictor is None):
            raise ValueError("w_bc > 0 needs a projector and a predictor")
        if fuse_teacher_gelu and self.w_bc == 0:
            raise ValueError("fuse_teacher_gelu needs the teacher, which only w_bc > 0 builds")
        cosine_momentum(0, 2, base_momentum, end_momentum)  # validated now, not at step 1
        if pretrained is not None:
            init_cfg = dict(type="Pretrained", _scope_="lut_plugin", checkpoint=pretrained)
        mim = self.w_mim > 0
        super().__init__(backbone, neck if mim else None, head if mim else None,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)  # fmt: skip
        self.base_momentum, self.end_momentum = float(base_momentum), float(end_momentum)
        if getattr(self.backbone, "with_cp", False) and hasattr(self.neck, "decoder_blocks"):
            self.neck.decoder_blocks = CheckpointedLayers(self.neck.decoder_blocks)
        self.teacher: MomentumTeacher | None = None
        if self.w_bc > 0:
            self.projector = MODELS.build(projector)
            self.predictor = MODELS.build(predictor)
            self.loss_bc = MODELS.build(loss_bc or dict(type="BroaderContextLoss"))
            self.teacher = MomentumTeacher({"backbone": self.backbone, "projector": self.projector})
            if fuse_teacher_gelu and fuse_linear_gelu(self.teacher["backbone"]) == 0:
                raise ValueError("fuse_teacher_gelu: the teacher's encoder has no Linear + GELU")
            # After every optimiser step that trains this model; held weakly.
            step_hook = weakref.WeakMethod(self._after_optimizer_step)
            handle = register_optimizer_step_post_hook(lambda opt, *_: step_hook()(opt))
            weakref.finalize(self, handle.remove)
        self._check_parts_fit()

    def _check_parts_fit(self) -> None:
        """Name the setting whose size does not fit the encoder, at build time."""
        enc, width = self.backbone, self.backbone.embed_dims
        checks = {}  # setting: (its size, what it must equal, that size)
        if self.teacher is not None:
            proj, pred = ([m for m in h.modules() if isinstance(m, nn.Linear)]
                          for h in (self.projector, self.predictor))  # fmt: skip
            checks["projector.in_channels"] = proj[0].in_features, "the encoder's width", width
            checks["predictor.in_channels"] = (pred[0].in_features, "the projector's output",
                                               proj[-1].out_features)  # fmt: skip
        if isinstance(neck := self.neck, MAEPretrainDecoder):
            patch = enc.patch_embed.projection.kernel_size[0]
            checks["neck.embed_dim"] = neck.decoder_embed.in_features, "the encoder's width", width
            checks["neck.num_patches"] = neck.num_patches, "the encoder's patches", enc.num_patches
            checks["neck.patch_size**2 * neck.in_chans"] = (
                neck.decoder_pred.out_features, "the encoder's patch_size**2 * 3", patch**2 * 3
            )  # fmt: skip
            if hasattr(self.head, "patch_size"):
                checks["head.patch_size"] = self.head.patch_size, "the encoder's patch_size", patch
        for setting, (size, what, expected) in checks.items():
            if size != expected:
                raise ValueError(
                    f"LUT: model.{setting} is {size}, but must equal {what} ({expected})"
                )

    def init_weights(self) -> None:
        """Initialise the student; the teacher starts as its exact copy."""
        super().init_weights()
        if self.teacher is not None:
            self.teacher.update_from(dict(self.named_children()), momentum=0.0)

    def update_teacher(self, cur_iter: int, max_iters: int) -> float:
        """EMA step after optimiser step ``cur_iter`` of ``max_iters``; returns the momentum."""
        if self.teacher is None:
            return 1.0
        momentum = cosine_momentum(cur_iter, max_iters, self.base_momentum, self.end_momentum)
        self.teacher.update_from(dict(self.named_children()), momentum)
        return momentum

    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Update the teacher if ``optimizer`` trains this model, at the ``MessageHub``'s
        ``iter`` of ``max_iters`` (outside a Runner the loop calls :meth:`update_teacher`)."""
        # Recognised by one trained student parameter (a frozen one, e.g. cls token, skipped).
        params = (p for name in self.teacher for p in getattr(self, name).parameters())
        trained = next((p for p in params if p.requires_grad), None)
        groups = optimizer.param_groups
        if not self.training or not any(p is trained for g in groups for p in g["params"]):
            return
        hub = MessageHub.get_current_instance()
        cur_iter, max_iters = hub.get_info("iter"), hub.get_info("max_iters")
        if cur_iter is None or max_iters is None:
            return
        hub.update_scalar("train/teacher_momentum", self.update_teacher(cur_iter, max_iters))

    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.backbone(inputs, mask=None)

    def forward_lut(self, x1: torch.Tensor, x2: torch.Tensor,
                    noise: torch.Tensor | None = None) -> LUTOutputs:  # fmt: skip
        """One LUT step on two views; ``noise`` (drawn when omitted) defines both masks."""
        z1, z2, masks = self.backbone.forward_views(x1, x2, noise)
        loss_mim = self.mim_loss(z1, x1, masks) if self.w_mim > 0 else None
        if self.w_bc == 0:
            return LUTOutputs(masks, loss_mim)
        g1, g2 = self.pool(z1, masks.mask1), self.pool(z2, masks.mask2)
        return LUTOutputs(masks, loss_mim, *self.broader_context(g1, g2, x1, x2))

    def mim_loss(self, z1: torch.Tensor, x1: torch.Tensor, masks: tuple) -> torch.Tensor:
        """MAE flavour: reconstruct view 1 from its visible tokens (as ``MAE.loss``)."""
        return self.head.loss(self.neck(z1, masks.ids_restore1), x1, masks.mask1)

    def pool(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE flavour: ``z`` holds only the visible patches: the mean of ``z[:, 1:]``."""
        return z[:, 1:].mean(dim=1)

    def broader_context(self, g1: torch.Tensor, g2: torch.Tensor, x1: torch.Tensor,
                        x2: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        """``(loss_bc, p1, p2, t1, t2)`` (METHOD.md steps 5-7) of the global features."""
        # Heads run once per view: BN must normalise each view with its own statistics.
        p1 = self.predictor(self.projector(g1))
        p2 = self.predictor(self.projector(g2))
        with torch.no_grad():
            # The teacher sees the full views; both go through its encoder in one batch.
            tokens = self.teacher["backbone"].forward_full(torch.cat([x1, x2]))
            g1_t, g2_t = tokens[:, 1:].mean(dim=1).split(x1.shape[0])
            t1 = self.teacher["projector"](g1_t)
            t2 = self.teacher["projector"](g2_t)
        return self.loss_bc(p1, p2, t1, t2), p1, p2, t1, t2

    def loss(self, inputs: list[torch.Tensor], data_samples: list[DataSample] | None = None,
             noise: torch.Tensor | None = None, **kwargs) -> dict[str, torch.Tensor]:  # fmt: skip
        """The enabled ``loss_mim`` (``w_mim * L_MIM``) and ``loss_bc`` (``w_bc * L_BC``)."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "LUT needs two views per image: use MultiView with num_views=[1, 1] in the "
                "train pipeline"
            )
        if self.training and self.teacher is not None and inputs[0].shape[0] == 1:
            heads = [*self.projector.modules(), *self.predictor.modules()]
            if any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d) for m in heads):
                raise ValueError(
                    "LUT got a training batch of 1 image: the BatchNorm layers of its projector "
                    "and predictor need at least 2. Set drop_last=True in train_dataloader (LUT's "
                    "pre-training configs do) or use a larger batch size per GPU"
                )
        out = self.forward_lut(inputs[0], inputs[1], noise)
        losses = dict(loss_mim=(self.w_mim, out.loss_mim), loss_bc=(self.w_bc, out.loss_bc))
        return {name: w * loss for name, (w, loss) in losses.items() if loss is not None}
