"""Write reconstruction grids of a MIM model (LUT, LUT(SimMIM), MAE, SimMIM) as PNGs.

    python tools/visualize_reconstruction.py CONFIG [--checkpoint PATH] [--images FOLDER]
        [--out DIR] [--num N] [--batch-size B] [--seed S] [--scale K]

Columns: the image; view 1 with its removed patches grey; the reconstruction (``norm_pix``
undone); the reconstruction pasted into the removed patches; for LUT, view 2's visible
patches. Without ``--images``: the val split of the config's LUTToyShapesDataset (else the
default one). See docs/visualization.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmpretrain.apis import get_model
from mmpretrain.registry import DATASETS

import lut_plugin  # noqa: F401  (registers LUT's models and the checkpoint types)
from lut_plugin.datasets import LUTToyShapesDataset
from lut_plugin.runtime.loading import StrictPretrainedInit
from lut_plugin.visualization import reconstruction_grid

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
TITLES = ["image", "view 1 masked", "reconstruction", "rec. + visible", "view 2 visible"]


def image_paths(cfg: Config, folder: str | None, num: int) -> list[str]:
    """The first ``num`` images (sorted) of ``folder``, or of the toy val split."""
    if folder is None:
        data = cfg.get("train_dataloader", {}).get("dataset", {})
        if data.get("type") != "LUTToyShapesDataset":
            data = dict(type="LUTToyShapesDataset")  # or the one a toy config generated
        folder = Path(data.get("data_root", LUTToyShapesDataset.DEFAULT_ROOT)) / "val"
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
    return (torch.stack(out).permute(0, 3, 1, 2).float() - mean) / std


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("--checkpoint", help="weights, loaded strictly (random init without)")
    p.add_argument("--images", help="folder of images (default: the toy val split)")
    p.add_argument("--out", default="work_dirs/reconstruction", help="output folder")
    p.add_argument("--num", type=int, default=8, help="images in all")
    p.add_argument("--batch-size", type=int, default=8, help="images (rows) per grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the masks")
    p.add_argument("--scale", type=int, default=4, help="upscaling of small images")
    args = p.parse_args(argv)
    MMLogger.get_instance("visualize_reconstruction", log_level="WARNING")  # no init report
    cfg = Config.fromfile(args.config)
    model = get_model(cfg)  # in eval mode, with the config's data preprocessor
    if args.checkpoint:  # the strict Pretrained: a misfit is an error naming the file and keys
        StrictPretrainedInit(args.checkpoint)(model)
    else:
        model.init_weights()
    size, pre = model.backbone.patch_embed.init_input_size[0], model.data_preprocessor
    paths = image_paths(cfg, args.images, args.num)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for i in range(0, len(paths), args.batch_size):
        images = load_images(paths[i : i + args.batch_size], size, pre.mean, pre.std)
        grid = reconstruction_grid(model, images, seed=args.seed + i, scale=args.scale)
        width = size * args.scale + 2  # of a panel
        header = np.full((22, grid.shape[1], 3), 255, np.uint8)  # the column titles
        for j, title in enumerate(TITLES[: grid.shape[1] // width]):
            cv2.putText(header, title, (j * width + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
        path = Path(args.out) / f"reconstruction_{i // args.batch_size:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([header, grid]), cv2.COLOR_RGB2BGR))
        print(path)


if __name__ == "__main__":
    main()
