"""Generate an embedded toy dataset by hand (the toy datasets also make theirs on first use).

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
    """``lut_plugin/datasets/toy.py`` (numpy and PIL only), without the OpenMMLab stack."""
    path = Path(__file__).resolve().parents[1] / "lut_plugin" / "datasets" / "toy.py"
    spec = importlib.util.spec_from_file_location("lut_plugin_toy_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a procedural toy dataset.")
    # fmt: off
    parser.add_argument("--kind", choices=["cls", "ade"], required=True,
                        help="'cls': <out>/{train,val}/<class>/*.png; 'ade': ADE20K layout")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--image-size", type=int, default=64, help="image side (64)")
    parser.add_argument("--num-train", type=int, help="training images (512 cls / 32 ade)")
    parser.add_argument("--num-val", type=int, help="validation images (128 cls / 8 ade)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--max-shapes", type=int, default=3, help="ade: shapes per image (3)")
    parser.add_argument("--force", action="store_true", help="delete --out first if it exists")
    # fmt: on
    args = parser.parse_args(argv)
    toy, out = _load_toy(), Path(args.out)
    if out.exists() and not args.force:
        print(f"error: {out} exists; pass --force to regenerate it", file=sys.stderr)
        return 1
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    try:
        toy.ensure_toy_dataset(out, args.kind, args.image_size, args.num_train, args.num_val,
                               args.seed, args.max_shapes)  # fmt: skip
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    meta = (out / toy.META_FILE).read_text()
    print(f"wrote {out} in {time.perf_counter() - start:.1f}s\n{meta}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
