"""Generate the embedded toy datasets by hand.

Training does not need this: ``LUTToyShapesDataset`` / ``LUTToyADE20KDataset`` generate their
folder on first use. Examples::

    python tools/make_toy_data.py --kind cls --out data/generated/toy_shapes \
        --num-train 2000 --num-val 500   # as the toy configs use it
    python tools/make_toy_data.py --kind ade --out data/toy_ade_64 --num-train 64
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import time
from pathlib import Path


def _load_toy():
    """Load ``lut_plugin/data/toy.py`` without importing the OpenMMLab stack."""
    path = Path(__file__).resolve().parents[1] / "lut_plugin" / "data" / "toy.py"
    spec = importlib.util.spec_from_file_location("lut_plugin_toy_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Generate a procedural toy dataset.")
    parser.add_argument(
        "--kind",
        choices=["cls", "ade"],
        required=True,
        help="'cls': <out>/{train,val}/<class>/*.png (mmpretrain CustomDataset); "
        "'ade': ADE20K layout <out>/images|annotations/{training,validation}",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--image-size", type=int, default=64, help="image side (default 64)")
    parser.add_argument(
        "--num-train", type=int, default=None, help="training images (default 512 cls / 32 ade)"
    )
    parser.add_argument(
        "--num-val", type=int, default=None, help="validation images (default 128 cls / 8 ade)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--max-shapes", type=int, default=3, help="ade: at most this many shapes per image"
    )
    parser.add_argument(
        "--force", action="store_true", help="delete --out first if it already exists"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    toy = _load_toy()
    out = Path(args.out)
    if out.exists():
        if not args.force:
            print(f"error: {out} exists; pass --force to regenerate it", file=sys.stderr)
            return 1
        shutil.rmtree(out)
    start = time.perf_counter()
    try:
        toy.ensure_toy_dataset(
            out,
            kind=args.kind,
            image_size=args.image_size,
            num_train=args.num_train,
            num_val=args.num_val,
            seed=args.seed,
            max_shapes=args.max_shapes,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    meta = (out / toy.META_FILE).read_text()
    print(f"wrote {out} in {time.perf_counter() - start:.1f}s\n{meta}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
