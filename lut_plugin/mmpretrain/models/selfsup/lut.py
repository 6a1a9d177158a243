"""LUT: MAE plus the broader-context loss on the unmasked tokens."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from mmengine.dist import is_distributed
from mmengine.logging import MessageHub
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from lut_plugin.core import MomentumTeacher, cosine_momentum


class LUTOutputs(NamedTuple):
    """Everything one LUT step computes (unweighted losses).

    ``masks`` is the flavour's mask tuple: ``DisjointMasks`` (MAE) or ``SimMIMMasks``.
    """

    loss_mim: torch.Tensor | None
    loss_bc: torch.Tensor | None
    masks: tuple
    p1: torch.Tensor | None
    p2: torch.Tensor | None
    t1: torch.Tensor | None
    t2: torch.Tensor | None


def _check_weight(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative loss weight, got {value}")
    return value


@MODELS.register_module()
class LUT(BaseSelfSupervisor):
    """LUT (MAE flavour).

    Implementation of `Learning with Unmasked Tokens Drives Stronger Vision
    Learners <https://arxiv.org/abs/2310.13593>`_. Each image comes as two
    views with disjoint visible patch sets. The MAE decoder reconstructs view 1;
    the pooled visible tokens of each view, passed through the projector and
    predictor, regress the momentum teacher's projection of the *other* full
    view. The teacher is updated in :meth:`train_step`, after each optimiser
    step, so a config needs no hook for it (multi-GPU runs need
    ``model_wrapper_cfg=dict(type='LUTDistributedDataParallel')``).

    Args:
        backbone (dict): ``LUTViT`` config.
        neck (dict, optional): MAE decoder (``MAEPretrainDecoder``). Needed
            when ``w_mim > 0``.
        head (dict, optional): Reconstruction head (``MAEPretrainHead``).
            Needed when ``w_mim > 0``.
        projector (dict, optional): Projector ``h`` (``LUTProjectionMLP``).
            Needed when ``w_bc > 0``.
        predictor (dict, optional): Predictor ``q`` (``LUTProjectionMLP``).
            Needed when ``w_bc > 0``.
        loss_bc (dict): The broader-context loss. Defaults to
            ``dict(type='BroaderContextLoss')``.
        w_mim (float): Weight of the reconstruction loss. Defaults to 1.0.
        w_bc (float): Weight of the broader-context loss. Defaults to 0.25.
        base_momentum (float): Teacher momentum at the first iteration.
            Defaults to 0.996.
        end_momentum (float): Teacher momentum at the last iteration.
            Defaults to 1.0.
        pretrained (str, optional): Checkpoint to initialise from.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
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
        pretrained: str | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        self.w_mim = _check_weight("w_mim", w_mim)
        self.w_bc = _check_weight("w_bc", w_bc)
        if self.w_mim == 0 and self.w_bc == 0:
            raise ValueError("w_mim and w_bc are both 0: LUT would have nothing to learn")
        if self.w_mim > 0 and (neck is None or head is None):
            raise ValueError("w_mim > 0 needs a decoder (neck) and a reconstruction head (head)")
        if self.w_bc > 0 and (projector is None or predictor is None):
            raise ValueError("w_bc > 0 needs a projector and a predictor")
        # Validate now rather than at the first teacher update.
        cosine_momentum(0, 2, base_momentum, end_momentum)
        super().__init__(
            backbone=backbone,
            neck=neck if self.w_mim > 0 else None,
            head=head if self.w_mim > 0 else None,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        self.base_momentum = float(base_momentum)
        self.end_momentum = float(end_momentum)
        self.teacher: MomentumTeacher | None = None
        if self.w_bc > 0:
            self.projector = MODELS.build(projector)
            self.predictor = MODELS.build(predictor)
            self.loss_bc = MODELS.build(loss_bc or dict(type="BroaderContextLoss"))
            self.teacher = MomentumTeacher({"backbone": self.backbone, "projector": self.projector})
        # A training forward whose teacher update has not run yet (see ``loss``).
        self._teacher_update_pending = False

    # -- teacher -------------------------------------------------------------
    def _student_parts(self) -> dict:
        return {"backbone": self.backbone, "projector": self.projector}

    def init_weights(self) -> None:
        """Initialise the student, then start the teacher as its exact copy."""
        super().init_weights()
        if self.teacher is not None:
            self.teacher.update_from(self._student_parts(), momentum=0.0)

    def update_teacher(self, cur_iter: int, max_iters: int) -> float:
        """EMA step of the teacher after an optimiser step (METHOD.md step 9).

        Args:
            cur_iter (int): The iteration whose optimiser step just happened (0-based).
            max_iters (int): Iterations of the whole run.

        Returns:
            float: The momentum used.
        """
        if self.teacher is None:
            return 1.0
        momentum = cosine_momentum(cur_iter, max_iters, self.base_momentum, self.end_momentum)
        self.teacher.update_from(self._student_parts(), momentum)
        return momentum

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict:
        """``BaseModel.train_step`` (forward under ``optim_context``, ``update_params``),
        then :meth:`after_update_params`.

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimiser wrapper.

        Returns:
            dict: The log variables, ``teacher_momentum`` included after an update.
        """
        return self.after_update_params(optim_wrapper, super().train_step(data, optim_wrapper))

    def after_update_params(self, optim_wrapper: OptimWrapper, log_vars: dict) -> dict:
        """Update the teacher if ``optim_wrapper`` has just stepped (METHOD.md step 9).

        With ``accumulative_counts=a`` only every a-th data iteration steps and
        updates the teacher. The momentum is indexed by the data iteration k of
        the run's ``max_iters`` K (mmengine's ``MessageHub``, as mmpretrain's
        ``CosineEMA``): the same function of training progress for every ``a``,
        exactly ``end_momentum`` at the last update (k = K - 1) and
        ``base_momentum`` + O((a / K)^2) at the first (k = a - 1).

        Args:
            optim_wrapper (OptimWrapper): The wrapper that ran ``update_params``.
            log_vars (dict): Log variables of the step, extended in place.

        Returns:
            dict: ``log_vars``.
        """
        self._teacher_update_pending = False
        if self.teacher is None or not optim_wrapper.should_update():
            return log_vars
        hub = MessageHub.get_current_instance()
        cur_iter, max_iters = hub.get_info("iter"), hub.get_info("max_iters")
        if cur_iter is None or max_iters is None:
            raise RuntimeError(
                "LUT.train_step reads 'iter' and 'max_iters' from mmengine's MessageHub, which "
                "a Runner fills; outside a Runner call update_teacher(cur_iter, max_iters) after "
                "each optimiser step instead"
            )
        log_vars["teacher_momentum"] = self.update_teacher(cur_iter, max_iters)
        return log_vars

    # -- forward -------------------------------------------------------------
    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encoder features of unmasked images (as ``MAE.extract_feat``)."""
        return self.backbone(inputs, mask=None)

    def forward_lut(
        self, x1: torch.Tensor, x2: torch.Tensor, noise: torch.Tensor | None = None
    ) -> LUTOutputs:
        """Run one LUT step on two views and return every intermediate result.

        Args:
            x1 (torch.Tensor): View 1, normalised, ``(B, 3, H, W)``.
            x2 (torch.Tensor): View 2, normalised, ``(B, 3, H, W)``.
            noise (torch.Tensor, optional): ``(B, L)`` noise defining both masks.

        Returns:
            LUTOutputs: Unweighted losses, masks, predictions and targets.
        """
        z1, z2, masks = self.backbone.forward_views(x1, x2, noise)
        loss_mim = None
        if self.w_mim > 0:
            pred = self.neck(z1, masks.ids_restore1)
            loss_mim = self.head.loss(pred, x1, masks.mask1)
        loss_bc = p1 = p2 = t1 = t2 = None
        if self.w_bc > 0:
            # Student global feature: mean of the visible patch tokens (cls excluded).
            g1, g2 = z1[:, 1:].mean(dim=1), z2[:, 1:].mean(dim=1)
            loss_bc, p1, p2, t1, t2 = self.broader_context(g1, g2, x1, x2)
        return LUTOutputs(loss_mim, loss_bc, masks, p1, p2, t1, t2)

    def broader_context(
        self, g1: torch.Tensor, g2: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """L_BC from the student's pooled features of both views (METHOD.md steps 5-7).

        Shared by every LUT flavour: only how ``g1``/``g2`` are pooled differs.

        Args:
            g1 (torch.Tensor): Student global feature of view 1, ``(B, C)``.
            g2 (torch.Tensor): Student global feature of view 2, ``(B, C)``.
            x1 (torch.Tensor): View 1 images, for the teacher.
            x2 (torch.Tensor): View 2 images, for the teacher.

        Returns:
            tuple[torch.Tensor, ...]: ``(loss_bc, p1, p2, t1, t2)``, loss unweighted.
        """
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
        """Weighted losses of one step.

        Args:
            inputs (list[torch.Tensor]): The two views.
            data_samples (list[DataSample], optional): Unused.
            noise (torch.Tensor, optional): ``(B, L)`` noise defining the masks.

        Returns:
            dict[str, torch.Tensor]: ``loss_mim`` (``w_mim * L_MIM``) and
            ``loss_bc`` (``w_bc * L_BC``), whichever are enabled.
        """
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "LUT needs two views per image: use MultiView with num_views=[1, 1] in the "
                "train pipeline"
            )
        if self.training:
            self._check_training_step(inputs[0].shape[0])
        out = self.forward_lut(inputs[0], inputs[1], noise)
        losses = {}
        if out.loss_mim is not None:
            losses["loss_mim"] = self.w_mim * out.loss_mim
        if out.loss_bc is not None:
            losses["loss_bc"] = self.w_bc * out.loss_bc
        return losses

    def _check_training_step(self, batch_size: int) -> None:
        if self.teacher is None:
            return
        if batch_size == 1 and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
            for m in [*self.projector.modules(), *self.predictor.modules()]
        ):
            raise ValueError(
                "LUT got a training batch of 1 image: the BatchNorm layers of its projector and "
                "predictor need at least 2. Set drop_last=True in train_dataloader (LUT's "
                "pre-training configs do) or use a larger batch size per GPU"
            )
        # mmengine's MMDistributedDataParallel.train_step runs the forward but not
        # LUT.train_step: the teacher would silently stay frozen.
        if self._teacher_update_pending and is_distributed():
            raise RuntimeError(
                "LUT's teacher was not updated after the last training step: the model wrapper "
                "bypasses LUT.train_step. Set model_wrapper_cfg=dict(type="
                "'LUTDistributedDataParallel') in the config"
            )
        self._teacher_update_pending = True


@MODEL_WRAPPERS.register_module()
class LUTDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also updates LUT's teacher.

    mmengine's wrapper runs the forward, ``parse_losses`` and
    ``optim_wrapper.update_params`` itself and never calls the model's
    :meth:`LUT.train_step`; this one then calls :meth:`LUT.after_update_params`
    as ``LUT.train_step`` does. Use it with
    ``model_wrapper_cfg=dict(type='LUTDistributedDataParallel')`` (registered in
    mmengine's root registry, so any scope finds it); single-process runs do not
    wrap the model and ignore it.

    Args:
        **kwargs: Arguments of ``MMDistributedDataParallel``.
    """

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict:
        """``MMDistributedDataParallel.train_step``, then the teacher update."""
        log_vars = super().train_step(data, optim_wrapper)
        return self.module.after_update_params(optim_wrapper, log_vars)
