"""Frozen-feature evaluation of mmpretrain encoders (glue over ``lut_plugin.evaluation``).

Shared by ``LUTKNNMonitorHook`` (during training) and ``tools/analysis/evaluate_features.py``
and ``tools/analysis/compare_lut_mae.py`` (after training): labelled images come from any
mmpretrain dataset config (``LUTToyShapesDataset``, ``CustomDataset`` over an image folder...)
through a deterministic evaluation pipeline and the model's data preprocessor; the encoder's
tokens are pooled by :func:`lut_plugin.evaluation.extract_features`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from torch import nn
from torch.utils.data import DataLoader

from lut_plugin.evaluation import evaluate_features, extract_features
from lut_plugin.mmpretrain.datasets import NamedSampleDataset

#: what ``load_encoder`` accepts instead of a checkpoint path: a freshly initialised encoder.
RANDOM_INIT = "random"


def eval_pipeline(img_size: int) -> list[dict]:
    """Deterministic pipeline of labelled evaluation images: short side to ``img_size``
    (PIL bicubic; the training views use torchvision's kernel, within 1 grey level of it),
    centre crop, pack. Normalisation is left to the
    model's data preprocessor."""
    return [
        dict(type="LoadImageFromFile"),
        dict(
            type="ResizeEdge",
            scale=img_size,
            edge="short",
            backend="pillow",
            interpolation="bicubic",
        ),
        dict(type="CenterCrop", crop_size=img_size),
        dict(type="PackInputs"),
    ]


def encoder_input_size(encoder: nn.Module) -> int:
    """Side of the square images an mmpretrain ViT was built for (patch grid x patch size)."""
    kernel = encoder.patch_embed.projection.kernel_size
    patch = kernel[0] if isinstance(kernel, tuple) else kernel
    return int(encoder.patch_resolution[0] * patch)


def build_labelled_dataset(dataset_cfg: dict, img_size: int | None = None):
    """Build a labelled mmpretrain dataset; with ``img_size`` its pipeline becomes
    :func:`eval_pipeline`."""
    from mmpretrain.registry import DATASETS

    cfg = copy.deepcopy(dict(dataset_cfg))
    if img_size is not None:
        cfg["pipeline"] = eval_pipeline(img_size)
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        return DATASETS.build(cfg)


def load_labelled_batches(
    dataset, data_preprocessor: nn.Module, batch_size: int = 256
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(normalised images, labels)`` batches of a dataset in order (no shuffling), in memory
    (the monitor evaluates them many times)."""
    loader = DataLoader(
        NamedSampleDataset(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=0,
        collate_fn=default_collate,
    )
    batches = []
    for data in loader:
        data = data_preprocessor(data, False)
        samples = data["data_samples"]
        if not samples or "gt_label" not in samples[0]:
            raise ValueError(
                f"{type(dataset).__name__} gives no labels (gt_label); k-NN and linear-probe "
                "evaluation need a labelled dataset"
            )
        batches.append((data["inputs"], torch.cat([s.gt_label.reshape(-1)[:1] for s in samples])))
    return batches


def encoder_tokens(encoder: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``images -> (B, 1 + L, C)`` tokens after the final norm, without masking.

    ``forward_full`` for this project's encoders (``LUTViT``, ``LUTSimMIMViT``); mmpretrain's
    ``MAEViT`` (``out_type='raw'``) through ``encoder(x, mask=None)``.
    """
    if hasattr(encoder, "forward_full"):
        return encoder.forward_full

    def tokens(x: torch.Tensor) -> torch.Tensor:
        out = encoder(x, mask=None)[-1]
        if out.dim() != 3:
            raise ValueError(
                f"{type(encoder).__name__} returns {tuple(out.shape)} features; frozen-feature "
                "evaluation needs (B, 1 + L, C) tokens (out_type='raw' with a cls token)"
            )
        return out

    return tokens


def encoder_features(encoder: nn.Module, batches) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Pooled features (``'cls'``, ``'mean'``) and labels of labelled image batches.

    Args:
        encoder (nn.Module): An mmpretrain ViT (see :func:`encoder_tokens`).
        batches: ``(normalised images, labels)`` pairs, e.g. :func:`load_labelled_batches`.

    The encoder runs in evaluation mode and is put back in its previous mode afterwards.
    """
    was_training = encoder.training
    encoder.eval()
    try:
        return extract_features(encoder_tokens(encoder), batches)
    finally:
        encoder.train(was_training)


def pixel_features(batches) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The normalised images themselves, flattened: the raw-pixel baseline (``'pixels'``)."""
    feats, labels = zip(*((images.flatten(1).float(), y) for images, y in batches))
    return {"pixels": torch.cat(feats)}, torch.cat(labels)


def labelled_splits(
    train_cfg: dict, val_cfg: dict, img_size: int, data_preprocessor: nn.Module,
    batch_size: int = 256,
) -> tuple[list, list, int | None]:  # fmt: skip
    """``(train batches, val batches, number of classes)`` of two dataset configs, loaded
    once through :func:`eval_pipeline` and the data preprocessor."""
    train_set = build_labelled_dataset(train_cfg, img_size)
    num_classes = len(train_set.metainfo.get("classes") or []) or None
    val_set = build_labelled_dataset(val_cfg, img_size)
    return (
        load_labelled_batches(train_set, data_preprocessor, batch_size),
        load_labelled_batches(val_set, data_preprocessor, batch_size),
        num_classes,
    )


def load_encoder(
    config, checkpoint: str, encoder: str = "student", seed: int = 0, unsafe: bool | None = None
) -> tuple[nn.Module, nn.Module]:
    """Build a config's encoder and data preprocessor; load the encoder from a checkpoint.

    Args:
        config (str | mmengine.Config): Pre-training config (gives the architecture and
            the normalisation).
        checkpoint (str): A pre-training checkpoint of this project (LUT, LUT(SimMIM), MAE
            through ``LUT`` with ``w_bc=0`` or mmpretrain's ``MAE``), read with
            :func:`lut_plugin.checkpoint.load_checkpoint_file`; or ``'random'`` for the
            encoder as the model's ``init_weights`` leaves it under ``torch.manual_seed(seed)``
            (what a training run starts from).
        encoder (str): ``'student'`` (``backbone.*``) or ``'teacher'`` (``teacher.backbone.*``).
        seed (int): Seed of the random initialisation. Defaults to 0.
        unsafe (bool, optional): Unpickle the checkpoint fully (trusted files only); see
            :func:`lut_plugin.checkpoint.load_checkpoint_file`.

    Returns:
        tuple[nn.Module, nn.Module]: The encoder (evaluation mode) and the data preprocessor.
    """
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from lut_plugin.checkpoint import extract_encoder, load_checkpoint_file

    cfg = Config.fromfile(config) if not isinstance(config, Config) else config
    preprocessor_cfg = cfg.model.get("data_preprocessor") or cfg.get("data_preprocessor")
    if preprocessor_cfg is None:
        raise ValueError(f"{cfg.filename}: no data_preprocessor (normalisation) in the config")
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop("data_preprocessor", None)
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        preprocessor = MODELS.build(copy.deepcopy(preprocessor_cfg))
        # The whole model, so that the encoder gets the initialisation a training run starts
        # from (the algorithm's init_cfg included).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MODELS.build(model_cfg)
            model.init_weights()
    backbone = model.backbone
    if checkpoint != RANDOM_INIT:
        ckpt = load_checkpoint_file(checkpoint, unsafe=unsafe)
        weights = extract_encoder(ckpt, encoder, checkpoint)
        backbone.load_state_dict(weights, strict=True)
    backbone.eval()
    return backbone, preprocessor


def split_dataset_cfgs(
    config=None,
    data_root: str | None = None,
    splits: tuple[str, str] = ("train", "val"),
    test_images: int | None = None,
) -> tuple[dict, dict]:
    """Dataset configs of a labelled train (k-NN bank, probe training) and val split.

    With ``data_root``: an image folder read by mmpretrain's ``CustomDataset``
    (``<data_root>/<split>/<class>/<image>``). Otherwise the config's training dataset with
    its ``split`` switched (e.g. the embedded ``LUTToyShapesDataset``).

    ``test_images`` (embedded toy data only) replaces the second split by a held-out test
    set of that many images: the validation split of a second toy dataset generated with
    the next seed in ``<data_root>_test`` (10 training images, unused), which no run trains
    on and no setting is chosen on.
    """
    if test_images is not None and test_images < 1:
        raise ValueError(f"test_images must be >= 1, got {test_images}")
    if data_root is not None:
        if test_images:
            raise ValueError("test_images applies to the embedded toy data, not an image folder")
        return tuple(
            dict(type="CustomDataset", data_root=str(data_root), data_prefix=split)
            for split in splits
        )
    from mmengine.config import Config

    cfg = Config.fromfile(config) if not isinstance(config, Config) else config
    dataset = cfg.get("train_dataloader", {}).get("dataset")
    if dataset is None or "split" not in dataset:
        raise ValueError(
            f"{cfg.filename}: its training dataset has no 'split'; give an image folder "
            "with train/ and val/ class sub-folders instead"
        )
    out = []
    for split in splits:
        ds = copy.deepcopy(dict(dataset))
        ds["split"] = split
        if "with_label" in ds:
            ds["with_label"] = True
        ds.pop("pipeline", None)
        out.append(ds)
    if test_images:
        if not str(out[1].get("type", "")).endswith("LUTToyShapesDataset"):
            raise ValueError(f"test_images needs the embedded LUTToyShapesDataset, got {dataset}")
        from lut_plugin.mmpretrain.datasets import LUTToyShapesDataset

        root = out[1].get("data_root") or LUTToyShapesDataset.DEFAULT_ROOT
        out[1].update(data_root=f"{str(root).rstrip('/')}_test", split="val", num_train=10,
                      num_val=test_images, seed=out[1].get("seed", 0) + 1)  # fmt: skip
    return tuple(out)


def evaluate_encoder(
    encoder: nn.Module, train_batches, val_batches, num_classes: int | None = None, **kwargs
) -> dict[str, dict[str, float]]:
    """:func:`lut_plugin.evaluation.evaluate_features` of an encoder on labelled batches.

    ``kwargs`` go to ``evaluate_features`` (``k``, ``temperature``, ``probe_epochs``,
    ``seed``).
    """
    train, train_y = encoder_features(encoder, train_batches)
    val, val_y = encoder_features(encoder, val_batches)
    return evaluate_features(train, train_y, val, val_y, num_classes, **kwargs)


def evaluate_pixels(
    train_batches, val_batches, num_classes: int | None = None, **kwargs
) -> dict[str, dict[str, float]]:
    """The raw-pixel baseline (:func:`pixel_features`) through ``evaluate_features``."""
    train, train_y = pixel_features(train_batches)
    val, val_y = pixel_features(val_batches)
    return evaluate_features(train, train_y, val, val_y, num_classes, **kwargs)
