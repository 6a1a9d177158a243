"""k-NN accuracy of the frozen encoder during pre-training."""

from __future__ import annotations

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from .features import encoder_input_size, evaluate_encoder, labelled_splits, split_dataset_cfgs


@HOOKS.register_module()
class LUTKNNMonitorHook(Hook):
    """Log the k-NN top-1 and effective rank of the frozen encoders every ``interval``
    epochs (docs/evaluation.md); the random state is restored, so training is unchanged.

    Args:
        bank (dict, optional): Bank dataset. Defaults to the training dataset, ``split='train'``.
        query (dict, optional): Query dataset. Defaults to ``split='val'``.
        interval (int): Epochs between evaluations (and after the last). Defaults to 1.
        before_training (bool): Evaluate the initial encoder of a fresh run. Defaults to True.
        encoders (tuple[str]): ``'student'`` and/or ``'teacher'``. Defaults to ``('student',)``.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        img_size (int, optional): Image side. Defaults to the encoder's input size.
        batch_size (int): Images per forward pass. Defaults to 256.
    """

    priority = "LOW"

    def __init__(self, bank: dict | None = None, query: dict | None = None, interval: int = 1,
                 before_training: bool = True, encoders: tuple[str, ...] = ("student",),
                 k: int = 20, temperature: float = 0.07, img_size: int | None = None,
                 batch_size: int = 256) -> None:  # fmt: skip
        if int(interval) < 1:
            raise ValueError(f"LUTKNNMonitorHook interval must be >= 1 epoch, got {interval}")
        if not encoders or set(encoders) - {"student", "teacher"}:
            raise ValueError(f"encoders must be a subset of (student, teacher), got {encoders}")
        self.cfgs, self.interval, self.encoders = (bank, query), int(interval), tuple(encoders)
        self.before_training, self._data = before_training, None
        self.settings = dict(k=k, temperature=temperature, probe_epochs=0)
        self.img_size, self.batch_size = img_size, batch_size

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        defaults = split_dataset_cfgs(runner.cfg) if None in self.cfgs else (None, None)
        cfgs = [cfg or default for cfg, default in zip(self.cfgs, defaults)]
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        size = self.img_size or encoder_input_size(model.backbone)
        with torch.random.fork_rng(devices=[]):  # decoded once, evaluated many times
            self._data = labelled_splits(*cfgs, size, model.data_preprocessor, self.batch_size)
        if self.before_training and runner.iter == 0:
            self._evaluate(runner, epoch=0)

    def after_train_epoch(self, runner) -> None:
        if self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner):
            self._evaluate(runner, epoch=runner.epoch + 1)

    def _evaluate(self, runner, epoch: int) -> None:
        if self._data is None:  # not the main process
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        teacher = getattr(model, "teacher", None)
        encoders = dict(student=model.backbone, teacher=teacher and teacher["backbone"])
        metrics = {}
        with torch.random.fork_rng(devices=[]):
            for name in [name for name in self.encoders if encoders[name] is not None]:
                suffix = "" if name == "student" else f"_{name}"
                for pooling, row in evaluate_encoder(encoders[name], *self._data,
                                                     **self.settings).items():  # fmt: skip
                    key = f"{pooling}{suffix}"
                    metrics[f"knn_top1_{key}"] = row["knn_top1"]
                    runner.message_hub.update_scalar(f"train/knn_top1_{key}", row["knn_top1"])
                    metrics[f"erank_{key}"] = row["effective_rank"]
        runner.visualizer.add_scalars(dict(metrics, epoch=epoch), step=runner.iter)
        text = "  ".join(f"{key}: {value:.2f}" for key, value in metrics.items())
        runner.logger.info(f"Epoch(knn) [{epoch}]  {text}")
