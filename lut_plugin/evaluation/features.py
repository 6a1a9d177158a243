"""Pooled features of mmpretrain encoders on labelled images (for the monitor and the tools)."""

from __future__ import annotations

import copy

import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS
from torch import nn
from torch.utils.data import DataLoader

from .metrics import evaluate_features


def build_dataset(cfg: dict, img_size: int | None = None):
    """An mmpretrain dataset; with ``img_size``: short side resized (bicubic), centre-cropped."""
    pipeline = [dict(type="LoadImageFromFile"),
                dict(type="ResizeEdge", scale=img_size, edge="short", backend="pillow",
                     interpolation="bicubic"),
                dict(type="CenterCrop", crop_size=img_size), dict(type="PackInputs")]  # fmt: skip
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        return DATASETS.build(dict(cfg, pipeline=pipeline) if img_size else cfg)


def labelled_splits(train_cfg: dict, val_cfg: dict, img_size: int, preprocessor: nn.Module,
                    batch_size: int = 256) -> tuple[list, list, int | None]:  # fmt: skip
    """``(train batches, val batches, classes)``, batches of ``(normalised images, labels)``."""
    from lut_plugin.runtime.seeding import NamedSampleDataset  # loading errors name the file

    out = []
    for cfg in (train_cfg, val_cfg):
        dataset, batches = build_dataset(cfg, img_size), []
        for data in DataLoader(NamedSampleDataset(dataset), batch_size, collate_fn=default_collate):
            data = preprocessor(data, False)
            if "gt_label" not in data["data_samples"][0]:
                raise ValueError(f"{type(dataset).__name__} gives no labels (gt_label)")
            labels = [s.gt_label.reshape(-1)[:1] for s in data["data_samples"]]
            batches.append((data["inputs"], torch.cat(labels)))
        out.append(batches)
    return out[0], out[1], len(dataset.metainfo.get("classes") or []) or None


def encoder_input_size(encoder: nn.Module) -> int:
    """Side of the square images an mmpretrain ViT was built for."""
    return int(encoder.patch_resolution[0] * encoder.patch_embed.projection.kernel_size[0])


@torch.no_grad()
def encoder_features(encoder: nn.Module | None, batches: list) -> tuple[dict, torch.Tensor]:
    """``({'cls': (N, C), 'mean': (N, C)}, (N,) labels)``: cls token and mean patch token of
    the unmasked, final-normed output in eval mode; ``encoder=None``: ``{'pixels': (N, 3HW)}``."""
    labels = torch.cat([y.long().cpu() for _, y in batches])
    if encoder is None:
        return {"pixels": torch.cat([x.flatten(1).float().cpu() for x, _ in batches])}, labels
    training, full = encoder.training, getattr(encoder, "forward_full", None)
    encoder.eval()
    cls, mean = [], []
    for images, _ in batches:
        tokens = full(images) if full else encoder(images, mask=None)[-1]
        cls.append(tokens[:, 0].float().cpu())
        mean.append(tokens[:, 1:].mean(dim=1).float().cpu())
    encoder.train(training)
    return {"cls": torch.cat(cls), "mean": torch.cat(mean)}, labels


def evaluate_encoder(encoder: nn.Module | None, train: list, val: list,
                     num_classes: int | None = None, **kwargs) -> dict[str, dict]:  # fmt: skip
    """:func:`evaluate_features` (``kwargs``) of :func:`encoder_features` of two splits."""
    return evaluate_features(*encoder_features(encoder, train), *encoder_features(encoder, val),
                             num_classes, **kwargs)  # fmt: skip


def load_encoder(config: str | Config, checkpoint: str, encoder: str = "student", seed: int = 0,
                 unsafe: bool | None = None) -> tuple[nn.Module, nn.Module]:  # fmt: skip
    """A config's encoder (eval mode) loaded from a checkpoint, and its preprocessor.

    Args:
        config (str | Config): Pre-training config (architecture and normalisation).
        checkpoint (str): A pre-training checkpoint, or ``'random'`` (a run's initialisation).
        encoder (str): ``'student'`` or ``'teacher'``. Defaults to ``'student'``.
        seed (int): Seed of the random initialisation. Defaults to 0.
        unsafe (bool, optional): Unpickle the checkpoint fully (trusted files only).
    """
    from lut_plugin.convert import extract_encoder
    from lut_plugin.runtime.loading import load_checkpoint_file

    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    model_cfg = copy.deepcopy(cfg.model)
    preprocessor_cfg = model_cfg.pop("data_preprocessor", None) or cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope("mmpretrain"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MODELS.build(model_cfg)  # the whole model: the algorithm's init_cfg applies
        model.init_weights()
        preprocessor = MODELS.build(preprocessor_cfg)
    if checkpoint != "random":
        ckpt = load_checkpoint_file(checkpoint, unsafe=unsafe)
        model.backbone.load_state_dict(extract_encoder(ckpt, encoder, checkpoint), strict=True)
    model.backbone.eval()
    return model.backbone, preprocessor


def split_dataset_cfgs(config: str | Config, splits: tuple[str, str] = ("train", "val")) -> tuple:
    """A config's training dataset (no pipeline), its ``split`` set to each of ``splits``."""
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    dataset = dict(cfg.get("train_dataloader", {}).get("dataset", {}))
    dataset.pop("pipeline", None)
    if "split" not in dataset:
        raise ValueError(f"{cfg.filename}: its training dataset has no 'split'; give an image "
                         "folder with train/ and val/ class sub-folders instead")  # fmt: skip
    label = {"with_label": True} if "with_label" in dataset else {}
    return tuple(dict(copy.deepcopy(dataset), split=split, **label) for split in splits)
