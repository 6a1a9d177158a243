"""k-NN accuracy of the frozen encoder during pre-training."""

from __future__ import annotations

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

_ENCODERS = ("student", "teacher")


@HOOKS.register_module()
class LUTKNNMonitorHook(Hook):
    """Evaluate the encoder's frozen features with k-NN every ``interval`` epochs.

    Features of a labelled bank (e.g. the training split) and of labelled queries (e.g.
    the validation split) are pooled two ways (cls token, mean of the patch tokens) and
    classified with the weighted k-NN of :func:`lut_plugin.evaluation.knn_top1` (cosine,
    ``k = 20``, ``T = 0.07``). The accuracies are logged as ``knn_top1_cls`` and
    ``knn_top1_mean`` (``..._teacher`` for the momentum teacher): in the message hub, so
    they appear beside ``loss_mim``/``loss_bc`` in the following training log lines and
    their ``scalars.json`` rows, and as their own ``scalars.json`` row with the ``epoch``
    (0 = before training; what ``tools/analysis/compare_lut_mae.py`` plots) and an
    ``Epoch(knn)`` log line. With ``collapse_metrics`` that row and line also carry the
    effective rank of the query features (``erank_cls``, ``erank_mean``).

    The evaluation runs on the main process only, without gradients, with the encoder in
    evaluation mode and the global random state restored afterwards, so that a run with
    the monitor trains exactly as one without.

    Args:
        bank (dict, optional): Dataset config of the labelled bank. Defaults to the
            training dataset's config with ``split='train'``.
        query (dict, optional): Dataset config of the labelled queries. Defaults to the
            training dataset's config with ``split='val'``.
        interval (int): Evaluate every ``interval`` epochs and after the last one.
            Defaults to 1.
        before_training (bool): Also evaluate the initial encoder (epoch 0) when a run
            starts from scratch. Defaults to True.
        encoders (tuple[str]): ``'student'`` and/or ``'teacher'`` (LUT's momentum encoder;
            skipped for models without one). Defaults to ``('student',)``.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        img_size (int, optional): Side of the evaluation images. Defaults to the
            encoder's input size.
        batch_size (int): Images per forward pass. Defaults to 256.
        collapse_metrics (bool): Also log the effective rank. Defaults to True.
    """

    priority = "LOW"

    def __init__(
        self,
        bank: dict | None = None,
        query: dict | None = None,
        interval: int = 1,
        before_training: bool = True,
        encoders: tuple[str, ...] = ("student",),
        k: int = 20,
        temperature: float = 0.07,
        img_size: int | None = None,
        batch_size: int = 256,
        collapse_metrics: bool = True,
    ) -> None:
        if int(interval) < 1:
            raise ValueError(f"LUTKNNMonitorHook interval must be >= 1 epoch, got {interval}")
        unknown = set(encoders) - set(_ENCODERS)
        if unknown or not encoders:
            raise ValueError(f"encoders must be a non-empty subset of {_ENCODERS}, got {encoders}")
        self.bank_cfg, self.query_cfg = bank, query
        self.interval = int(interval)
        self.before_training = before_training
        self.encoders = tuple(encoders)
        self.k, self.temperature = int(k), float(temperature)
        self.img_size = img_size
        self.batch_size = int(batch_size)
        self.collapse_metrics = collapse_metrics
        self._batches = None
        self._num_classes = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        """Build the labelled datasets; evaluate the initial encoder of a fresh run."""
        if not is_main_process():
            return
        from lut_plugin.mmpretrain.evaluation import (
            encoder_input_size,
            labelled_splits,
            split_dataset_cfgs,
        )

        bank_cfg, query_cfg = self.bank_cfg, self.query_cfg
        if bank_cfg is None or query_cfg is None:
            default_bank, default_query = split_dataset_cfgs(runner.cfg)
            bank_cfg, query_cfg = bank_cfg or default_bank, query_cfg or default_query
        model = self._model(runner)
        img_size = self.img_size or encoder_input_size(model.backbone)
        # Decoded and normalised once: the images do not change between evaluations.
        with torch.random.fork_rng(devices=[]):
            bank, query, self._num_classes = labelled_splits(
                bank_cfg, query_cfg, img_size, model.data_preprocessor, self.batch_size
            )
        self._batches = (bank, query)
        if self.before_training and runner.epoch == 0 and runner.iter == 0:
            self._evaluate(runner, epoch=0)

    def after_train_epoch(self, runner) -> None:
        """Evaluate every ``interval`` epochs and after the last epoch."""
        if self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner):
            self._evaluate(runner, epoch=runner.epoch + 1)  # runner.epoch counts from 0

    def _evaluate(self, runner, epoch: int) -> None:
        if not is_main_process() or self._batches is None:
            return
        from lut_plugin.mmpretrain.evaluation import evaluate_encoder

        model = self._model(runner)
        metrics = {}
        # Leave the training run's random state exactly as it was (data loader seeds...).
        with torch.random.fork_rng(devices=[]):
            for name in self.encoders:
                encoder = _encoder(model, name)
                if encoder is None:
                    continue
                suffix = "" if name == "student" else f"_{name}"
                results = evaluate_encoder(
                    encoder, *self._batches, self._num_classes,
                    k=self.k, temperature=self.temperature, probe_epochs=0,
                )  # fmt: skip
                for pooling, row in results.items():
                    metrics[f"knn_top1_{pooling}{suffix}"] = row["knn_top1"]
                    if self.collapse_metrics:
                        metrics[f"erank_{pooling}{suffix}"] = row["effective_rank"]
        for key, value in metrics.items():
            if key.startswith("knn_top1"):  # beside the losses in the training log lines
                runner.message_hub.update_scalar(f"train/{key}", value)
        runner.visualizer.add_scalars(dict(metrics, epoch=epoch), step=runner.iter)
        text = "  ".join(f"{key}: {value:.2f}" for key, value in metrics.items())
        runner.logger.info(f"Epoch(knn) [{epoch}]  {text}")


def _encoder(model, name: str):
    if name == "student":
        return model.backbone
    teacher = getattr(model, "teacher", None)
    return None if teacher is None else teacher["backbone"]
