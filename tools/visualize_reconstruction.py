"""Write reconstruction grids of a MIM model (LUT, LUT(SimMIM), MAE, SimMIM) as PNGs.

    python tools/visualize_reconstruction.py CONFIG [--checkpoint PATH] [--images FOLDER]
        [--out DIR] [--num N] [--batch-size B] [--seed S] [--scale K]

Columns: the image; view 1 with its removed patches grey; the reconstruction (``norm_pix``
undone with each patch's own mean and variance); the reconstruction pasted into the removed
patches; for LUT, view 2's visible patches (disjoint from view 1's). Without ``--images``
the toy set's val split is used (the one of the config's LUTToyShapesDataset, else the
default one, generated under data/generated/ on first use). See docs/visualization.md.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS

import lut_plugin  # noqa: F401  (registers LUT's models and the checkpoint types)
from lut_plugin.visualization import reconstruction_grid

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
TITLES = ["image", "view 1 masked", "reconstruction", "rec. + visible", "view 2 visible"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--checkpoint", help="weights (random init without)")
    parser.add_argument("--images", help="folder of images (default: the toy val split)")
    parser.add_argument("--out", default="work_dirs/reconstruction", help="output folder")
    parser.add_argument("--num", type=int, default=8, help="images in all")
    parser.add_argument("--batch-size", type=int, default=8, help="images (rows) per grid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks")
    parser.add_argument("--scale", type=int, default=4, help="upscaling of small images")
    return parser.parse_args(argv)


def build_model(cfg: Config, checkpoint: str | None) -> torch.nn.Module:
    """The config's model, randomly initialised or with ``checkpoint``'s weights (strict)."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault("data_preprocessor", cfg.get("data_preprocessor"))
    model = MODELS.build(model_cfg)
    if not checkpoint:
        model.init_weights()
    else:
        try:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SystemExit(f"cannot load {checkpoint} with weights_only=True: {exc}") from exc
        try:
            model.load_state_dict(ckpt.get("state_dict", ckpt))
        except RuntimeError as exc:
            raise SystemExit(f"{checkpoint} does not fit the config's model: {exc}") from exc
    return model.eval()


def image_paths(cfg: Config, folder: str | None, num: int) -> list[str]:
    if folder is None:
        data = cfg.get("train_dataloader", {}).get("dataset", {})
        if data.get("type") != "LUTToyShapesDataset":
            data = dict(type="LUTToyShapesDataset")  # or the one a toy config generated
        folder = Path(data.get("data_root", "data/generated/toy_shapes")) / "val"
        if not folder.is_dir():
            DATASETS.build(dict(data, split="val", pipeline=[], lazy_init=True))
    paths = sorted(str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in SUFFIXES)
    if not paths:
        raise SystemExit(f"no images under {folder}")
    return paths[:num]


def load_images(paths: list[str], size: int, mean, std) -> torch.Tensor:
    """Short side resized to ``size`` (bicubic), centre crop, normalised: ``(B, 3, S, S)``."""
    out = []
    for path in paths:
        img = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        s = size / min(h, w)
        img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))), cv2.INTER_CUBIC)
        top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        out.append(torch.from_numpy(img[top : top + size, left : left + size].copy()))
    x = torch.stack(out).permute(0, 3, 1, 2).float()
    return (x - mean) / std


def add_titles(grid: np.ndarray, panel_width: int, num_panels: int) -> np.ndarray:
    """A white header row naming each column."""
    header = np.full((22, grid.shape[1], 3), 255, np.uint8)
    for i, title in enumerate(TITLES[:num_panels]):
        cv2.putText(header, title, (i * panel_width + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    return np.concatenate([header, grid])


def main(argv=None) -> list[Path]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    MMLogger.get_instance("visualize_reconstruction", log_level="WARNING")  # no init report
    init_default_scope(cfg.get("default_scope", "mmpretrain"))
    model = build_model(cfg, args.checkpoint)
    size = model.backbone.patch_embed.init_input_size[0]
    pre = model.data_preprocessor
    paths = image_paths(cfg, args.images, args.num)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(0, len(paths), args.batch_size):
        images = load_images(paths[i : i + args.batch_size], size, pre.mean, pre.std)
        grid = reconstruction_grid(model, images, seed=args.seed + i, scale=args.scale)
        panel_width = size * args.scale + 2
        grid = add_titles(grid, panel_width, grid.shape[1] // panel_width)
        path = out_dir / f"reconstruction_{i // args.batch_size:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        written.append(path)
        print(path)
    return written


if __name__ == "__main__":
    main()
