"""Peak memory and time of a LUT pre-training step without and with ``with_cp``:
``python tools/analysis/with_cp_memory.py configs/mmpretrain/lut_vits_400e.py --batch 32``.
Random images, AdamW, each setting in its own process: peak resident memory on a CPU (model,
teacher, optimiser, step), peak allocated memory on a GPU; time per step after a warm-up one.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import lut_plugin  # noqa: F401  (registers LUT)


def measure(args) -> dict:
    cfg = Config.fromfile(args.config).model
    cfg.backbone.with_cp = bool(args.with_cp)
    cfg.backbone.img_size, cfg.neck.num_patches = args.img_size, (args.img_size // 16) ** 2
    for head in (cfg.projector, cfg.predictor):  # one process: BN for SyncBN
        head.norm = "bn" if head.norm == "syncbn" else head.norm
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = MODELS.build(cfg).to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = [torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)] * 2
    noise = torch.rand(args.batch, model.backbone.num_patches, device=device)
    times, losses = [], []
    for _ in range(args.steps + 1):
        start = time.perf_counter()
        loss = sum(model.loss(x, noise=noise).values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())  # waits for the device
        times.append(time.perf_counter() - start)
    cpu_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else cpu_peak
    return dict(peak=peak / 2**30, step=sum(times[1:]) / args.steps, loss=losses[0])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--img-size", type=int, default=224, help="patch 16")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after a warm-up one")
    parser.add_argument("--with-cp", type=int, choices=[0, 1], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.with_cp is not None:
        sys.exit(print(json.dumps(measure(args))))
    print("| with_cp | peak memory (GiB) | time per step (s) | first loss |\n|---|---|---|---|")
    for cp in (0, 1):
        run = subprocess.run([sys.executable, *sys.argv, f"--with-cp={cp}"], capture_output=True)
        out = json.loads(run.stdout.decode().splitlines()[-1])
        print(f"| {bool(cp)} | {out['peak']:.2f} | {out['step']:.2f} | {out['loss']:.6f} |")
