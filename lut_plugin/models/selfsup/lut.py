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
    """Everything one LUT step computes: unweighted losses, the flavour's masks
    (``DisjointMasks``, ``SimMIMMasks``), predictions and targets."""

    loss_mim: torch.Tensor | None
    loss_bc: torch.Tensor | None
    masks: tuple
    p1: torch.Tensor | None
    p2: torch.Tensor | None
    t1: torch.Tensor | None
    t2: torch.Tensor | None


@MODELS.register_module()
class LUT(BaseSelfSupervisor):
    """LUT: a MIM method plus the broader-context branch (MAE flavour here).

    Implementation of `Learning with Unmasked Tokens Drives Stronger Vision Learners
    <https://arxiv.org/abs/2310.13593>`_. Each image comes as two views with disjoint visible
    patch sets. The MIM method reconstructs view 1; the pooled visible tokens of each view,
    through the projector and predictor, regress the momentum teacher's projection of the
    *other* full view. The teacher follows every optimiser step that trains the model (a
    torch optimiser post-hook), so a config needs no hook, wrapper or loop for it.

    A MIM flavour is the backbone's ``forward_views`` / ``forward_full`` plus
    :meth:`mim_loss` and :meth:`pool` (``LUTSimMIM`` overrides these two); a backbone that
    encodes like ``LUTViT`` (e.g. ``LUTMFFViT``) needs no algorithm class of its own.

    Args:
        backbone (dict): ``LUTViT`` config (or another flavour's two-view encoder).
        neck (dict, optional): MIM decoder (``MAEPretrainDecoder``). Needed when ``w_mim > 0``.
        head (dict, optional): Reconstruction head (``MAEPretrainHead``). Needed when
            ``w_mim > 0``.
        projector (dict, optional): Projector ``h`` (``LUTProjectionMLP``). Needed when
            ``w_bc > 0``.
        predictor (dict, optional): Predictor ``q`` (``LUTProjectionMLP``). Needed when
            ``w_bc > 0``.
        loss_bc (dict): The broader-context loss. Defaults to
            ``dict(type='BroaderContextLoss')``.
        w_mim (float): Weight of the reconstruction loss. Defaults to 1.0.
        w_bc (float): Weight of the broader-context loss. Defaults to 0.25.
        base_momentum (float): Teacher momentum at the first iteration. Defaults to 0.996.
        end_momentum (float): Teacher momentum at the last iteration. Defaults to 1.0.
        fuse_teacher_gelu (bool): Run each MLP layer of the teacher's encoder and its GELU as
            one matrix-product call (``LinearGELU``, 4 % faster compiled ViT-B step on an
            H100); GELU's tanh approximation (at most 4.7e-4 from the exact one), so the
            targets are not bit-identical to the reference's. Needs ``w_bc > 0``.
            Defaults to False.
        pretrained (str, optional): Checkpoint to initialise the whole model from, weights
            only and strictly (mmengine's ``Pretrained`` would skip misfitting tensors with
            a warning). Replaces ``init_cfg``.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict | None = None,
        head: dict | None = None,
        projector: dict | None = None,
        predictor: dict | None = None,
        loss_bc: dict | None = None,
        w_mim: float = 1.0,
        w_bc: float = 0.25,
        base_momentum: float = 0.996,
        end_momentum: float = 1.0,
        fuse_teacher_gelu: bool = False,
        pretrained: str | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
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
        super().__init__(
            backbone=backbone,
            neck=neck if self.w_mim > 0 else None,
            head=head if self.w_mim > 0 else None,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
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
        """Name the setting whose size does not fit the encoder, at build time (instead of a
        shape error in the first step)."""
        enc, width = self.backbone, self.backbone.embed_dims
        checks = {}  # setting: (its size, what it must equal, that size)
        if self.teacher is not None:
            proj, pred = ([m for m in h.modules() if isinstance(m, nn.Linear)]
                          for h in (self.projector, self.predictor))  # fmt: skip
            out = proj[-1].out_features
            checks["projector.in_channels"] = proj[0].in_features, "the encoder's width", width
            checks["predictor.in_channels"] = pred[0].in_features, "the projector's output", out
        if isinstance(self.neck, MAEPretrainDecoder):
            neck, patch = self.neck, enc.patch_embed.projection.kernel_size[0]
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

    # -- teacher -------------------------------------------------------------
    def _student_parts(self) -> dict:
        return {"backbone": self.backbone, "projector": self.projector}

    def init_weights(self) -> None:
        """Initialise the student, then start the teacher as its exact copy."""
        super().init_weights()
        if self.teacher is not None:
            self.teacher.update_from(self._student_parts(), momentum=0.0)

    def update_teacher(self, cur_iter: int, max_iters: int) -> float:
        """EMA step of the teacher after the optimiser step of iteration ``cur_iter`` (0-based)
        of ``max_iters`` (METHOD.md step 9); returns the momentum used."""
        if self.teacher is None:
            return 1.0
        momentum = cosine_momentum(cur_iter, max_iters, self.base_momentum, self.end_momentum)
        self.teacher.update_from(self._student_parts(), momentum)
        return momentum

    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Update the teacher when ``optimizer``, which trains this model, has stepped.

        Called by torch's global optimiser step post-hook, so the update follows every real
        optimiser step whoever runs it (``train_step``, mmengine's DDP wrapper, gradient
        accumulation, AMP). A step that the loss scaler skips updates the teacher only if
        ``optimizer.step()`` runs: a fused optimiser is called and skips on the device (the
        teacher moves towards the unchanged student, as the reference's EMA), a non-fused one
        is not called. The momentum follows the data iteration k of the run's K (``iter``,
        ``max_iters`` in mmengine's ``MessageHub``, as mmpretrain's ``CosineEMA``).
        """
        # Recognised by one trained student parameter (a frozen one, e.g. cls token, skipped).
        params = (p for part in self._student_parts().values() for p in part.parameters())
        trained = next((p for p in params if p.requires_grad), None)
        groups = optimizer.param_groups
        if not self.training or not any(p is trained for g in groups for p in g["params"]):
            return
        hub = MessageHub.get_current_instance()
        cur_iter, max_iters = hub.get_info("iter"), hub.get_info("max_iters")
        if cur_iter is None or max_iters is None:
            # Outside an mmengine Runner: the loop calls update_teacher() itself.
            return
        hub.update_scalar("train/teacher_momentum", self.update_teacher(cur_iter, max_iters))

    # -- forward -------------------------------------------------------------
    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encoder features of unmasked images (as ``MAE.extract_feat``)."""
        return self.backbone(inputs, mask=None)

    def forward_lut(
        self, x1: torch.Tensor, x2: torch.Tensor, noise: torch.Tensor | None = None
    ) -> LUTOutputs:
        """One LUT step on the normalised views ``x1``, ``x2`` ``(B, 3, H, W)``, every
        intermediate result. ``noise`` defines both masks (``(B, L)`` for ``LUTViT``); the
        backbone draws it when omitted. The flavour encodes (``backbone.forward_views``),
        gives the MIM loss (:meth:`mim_loss`) and pools (:meth:`pool`); the broader-context
        branch (:meth:`broader_context`) is the same for every flavour."""
        z1, z2, masks = self.backbone.forward_views(x1, x2, noise)
        loss_mim = self.mim_loss(z1, x1, masks) if self.w_mim > 0 else None
        loss_bc = p1 = p2 = t1 = t2 = None
        if self.w_bc > 0:
            g1, g2 = self.pool(z1, masks.mask1), self.pool(z2, masks.mask2)
            loss_bc, p1, p2, t1, t2 = self.broader_context(g1, g2, x1, x2)
        return LUTOutputs(loss_mim, loss_bc, masks, p1, p2, t1, t2)

    def mim_loss(self, z1: torch.Tensor, x1: torch.Tensor, masks: tuple) -> torch.Tensor:
        """MAE flavour: the decoder reconstructs view 1 from its visible tokens ``z1``; the
        head's loss covers the masked patches (as ``MAE.loss``)."""
        return self.head.loss(self.neck(z1, masks.ids_restore1), x1, masks.mask1)

    def pool(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE flavour: ``z`` holds the cls token and the visible patch tokens only, so the
        student's global feature is the mean of ``z[:, 1:]`` (``mask`` is not needed)."""
        return z[:, 1:].mean(dim=1)

    def broader_context(
        self, g1: torch.Tensor, g2: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """``(loss_bc, p1, p2, t1, t2)`` (METHOD.md steps 5-7) from the student's global
        features ``g1``, ``g2`` ``(B, C)`` and the views ``x1``, ``x2`` (for the teacher)."""
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

    def loss(
        self,
        inputs: list[torch.Tensor],
        data_samples: list[DataSample] | None = None,
        noise: torch.Tensor | None = None,
        **kwargs,
    ) -> dict[str, torch.Tensor]:
        """``loss_mim`` (``w_mim * L_MIM``) and ``loss_bc`` (``w_bc * L_BC``), whichever are
        enabled, of the two views ``inputs`` (``data_samples`` unused; ``noise`` as in
        :meth:`forward_lut`)."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "LUT needs two views per image: use MultiView with num_views=[1, 1] in the "
                "train pipeline"
            )
        if self.training and self.teacher is not None and inputs[0].shape[0] == 1:
            self._check_batch_of_one()
        out = self.forward_lut(inputs[0], inputs[1], noise)
        losses = {}
        if out.loss_mim is not None:
            losses["loss_mim"] = self.w_mim * out.loss_mim
        if out.loss_bc is not None:
            losses["loss_bc"] = self.w_bc * out.loss_bc
        return losses

    def _check_batch_of_one(self) -> None:
        if any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
            for m in [*self.projector.modules(), *self.predictor.modules()]
        ):
            raise ValueError(
                "LUT got a training batch of 1 image: the BatchNorm layers of its projector and "
                "predictor need at least 2. Set drop_last=True in train_dataloader (LUT's "
                "pre-training configs do) or use a larger batch size per GPU"
            )
