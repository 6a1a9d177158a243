"""Broader-context dynamics of a LUT checkpoint on the toy val split (experiment notes).

python docs/evaluation/scripts/dyn.py CONFIG CHECKPOINT DATA_ROOT
"""

import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import lut_plugin  # noqa: E402,F401
from lut_plugin.checkpoint import load_checkpoint_file  # noqa: E402
from lut_plugin.evaluation import effective_rank  # noqa: E402
from lut_plugin.mmpretrain.evaluation import labelled_splits, split_dataset_cfgs  # noqa: E402


def offdiag_cos(z: torch.Tensor) -> float:
    """Mean cosine similarity between different samples."""
    z = F.normalize(z, dim=1)
    n = len(z)
    return float(((z @ z.t()).sum() - n) / (n * n - n))


cfg = Config.fromfile(sys.argv[1])
cfg.train_dataloader.dataset.update(data_root=sys.argv[3], num_train=2000, num_val=500)
with DefaultScope.overwrite_default_scope("mmpretrain"):
    pre = MODELS.build(cfg.data_preprocessor)
    cfg.model.pop("data_preprocessor", None)
    model = MODELS.build(cfg.model)
model.load_state_dict(load_checkpoint_file(sys.argv[2])["state_dict"], strict=True)
model.eval()
_, val, _ = labelled_splits(*split_dataset_cfgs(cfg), 32, pre)
x = torch.cat([b[0] for b in val])
with torch.no_grad():
    gs = model.backbone.forward_full(x)[:, 1:].mean(1)
    gt = model.teacher["backbone"].forward_full(x)[:, 1:].mean(1)
    hs, ht = model.projector(gs), model.teacher["projector"](gt)
    p = model.predictor(hs)
    torch.manual_seed(0)
    out = model.forward_lut(x, x)
    print(
        f"erank student g {effective_rank(gs):.1f} teacher g {effective_rank(gt):.1f} | proj: "
        f"student {effective_rank(hs):.1f} teacher {effective_rank(ht):.1f} "
        f"pred {effective_rank(p):.1f}"
    )
    print(
        f"mean pairwise cos: g_s {offdiag_cos(gs):.3f} g_t {offdiag_cos(gt):.3f} "
        f"t {offdiag_cos(ht):.3f} p {offdiag_cos(p):.3f}"
    )
    print(
        f"cos(g_s, g_t) same image {F.cosine_similarity(gs, gt).mean():.3f}; "
        f"L_BC(masked views, same image) {out.loss_bc.item():.3f}"
    )
    # Teacher projector BN: running statistics (EMA of the student's, from masked views)
    # against the statistics of its actual input (full views).
    for name, lin, bn, g in (
        ("teacher (full views)", *model.teacher["projector"].mlp.layers[:2], gt),
        ("student (masked views)", *model.projector.mlp.layers[:2], None),
    ):
        if g is None:
            g = model.backbone.forward_views(x, x).z1[:, 1:].mean(1)
            print(f"erank masked-view pooled student {effective_rank(g):.1f}")
        a = lin(g)
        offset = ((a.mean(0) - bn.running_mean) / bn.running_var.sqrt()).abs().mean()
        ratio = (a.var(0) / bn.running_var).median()
        print(f"{name} BN: batch mean offset {offset:.2f} running std, var ratio {ratio:.2f}")
