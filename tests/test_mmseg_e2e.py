"""Pre-train -> load -> segment -> mIoU on the CPU, through tools/train.py and tools/test.py."""

from __future__ import annotations

import math
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from utils import ROOT, TOY_CFG, load_checkpoint, load_tool, train_here

import lut_plugin  # noqa: F401
from lut_plugin.runtime import CheckpointMismatchError

SEG_CFG = ROOT / "configs" / "mmseg" / "lut_vit-tiny_upernet_toy-ade_cpu.py"

# Smaller toy sets and loops than the configs' defaults, to keep the test short.
PRE_OPTS = [
    "train_cfg.max_epochs=1",
    "train_dataloader.batch_size=8",
    "train_dataloader.num_workers=0",
    "train_dataloader.persistent_workers=False",
    "train_dataloader.dataset.num_train=16",
    "train_dataloader.dataset.num_val=4",
]
SEG_DATA = [
    f"{loader}.dataset.{key}={value}"
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader")
    for key, value in (("num_train", 8), ("num_val", 4))
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working directory (the toy datasets are generated under it)."""
    return tmp_path_factory.mktemp("seg_e2e")


def _seg_data(workspace) -> list[str]:
    loaders = ("train_dataloader", "val_dataloader", "test_dataloader")
    return [*SEG_DATA, *(f"{k}.dataset.data_root={workspace / 'ade'}" for k in loaders)]


@pytest.fixture(scope="module")
def pretrain_ckpt(workspace):
    """A tiny LUT checkpoint written by the pre-training tools (one short epoch)."""
    work = workspace / "pretrain"
    train_here(
        TOY_CFG,
        work,
        cfg_options=[*PRE_OPTS, f"train_dataloader.dataset.data_root={workspace / 'toy'}"],
    )
    ckpt = work / "epoch_1.pth"
    sd = load_checkpoint(ckpt)["state_dict"]
    assert any(k.startswith("teacher.backbone.") for k in sd)
    return ckpt


def test_pretrain_checkpoint_to_miou(workspace, pretrain_ckpt):
    work = workspace / "seg"
    opts = [f'model.pretrained={pretrain_ckpt}', 'train_cfg.max_iters=4',
            'train_cfg.val_interval=4', *_seg_data(workspace)]  # fmt: skip
    out = train_here(SEG_CFG, work, cfg_options=opts)
    # the pre-trained student encoder was loaded, strictly, with its 8x8 grid resized to 16x16;
    # its final norm is skipped (mmseg's MAE recipe: final_norm=False). 52 = 4 blocks x 12
    # tensors (2 norms, qkv, proj, 2 MLP layers: weight and bias each) + cls token, pos_embed,
    # patch projection weight and bias; 16 = 4 blocks x (relative-position table and index,
    # gamma_1, gamma_2)
    assert re.search(
        rf"LUTMAE: loaded 52 tensors of the student encoder from {re.escape(str(pretrain_ckpt))} "
        r"\(pos_embed 64 -> 256 patches\); 16 relative-position/layer-scale tensors start as "
        r"identity; skipped: ln1\.weight, ln1\.bias",
        out,
    ), out[-3000:]
    assert "Iter(train) [4/4]" in out
    val = re.findall(r"Iter\(val\) \[4/4\].*?mIoU: (\S+)", out)
    assert len(val) == 1, out[-3000:]
    miou = float(val[0])
    assert math.isfinite(miou) and 0.0 <= miou <= 100.0

    # the backbone that was trained started from the pre-trained weights
    pre = load_checkpoint(pretrain_ckpt)["state_dict"]
    seg = load_checkpoint(work / "iter_4.pth")["state_dict"]
    key = "layers.3.ffn.layers.1.weight"
    assert seg[f"backbone.{key}"].shape == pre[f"backbone.{key}"].shape
    assert (seg[f"backbone.{key}"] - pre[f"backbone.{key}"]).abs().max() < 1e-2

    # tools/test.py reports the same mIoU for the saved checkpoint
    metrics = load_tool("test").main([str(SEG_CFG), str(work / "iter_4.pth"), "--work-dir",
        str(workspace / "seg_test"), "--cfg-options", *_seg_data(workspace)])  # fmt: skip
    assert metrics["mIoU"] == pytest.approx(miou, abs=0.01)


def test_layer_decay_on_loaded_weights(pretrain_ckpt):
    """The optimiser built for the loaded model gives each pre-trained block its own rate."""
    cfg = Config.fromfile(str(SEG_CFG))
    cfg.model.pretrained = str(pretrain_ckpt)
    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    model.init_weights()
    pre = load_checkpoint(pretrain_ckpt)["state_dict"]
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups
    depth, base = 4, cfg.optim_wrapper.optimizer.lr
    checked = 0
    for g in groups:
        for name, p in zip(g["param_names"], g["params"]):
            m = re.match(r"backbone\.layers\.(\d+)\.", name)
            if m and name in pre:  # a loaded block parameter: its values and its rate
                assert torch.equal(p.detach(), pre[name])
                layer_id = int(m.group(1)) + 1
                assert g["lr"] == pytest.approx(base * 0.65 ** (depth + 1 - layer_id))
                checked += 1
    assert checked == 4 * 12  # 12 tensors per block, all found in the optimiser
    rates = sorted({round(g["lr"], 12) for g in groups})
    assert len(rates) == depth + 2


def test_width_mismatch_fails_before_training(workspace, pretrain_ckpt):
    """A 64-d seg backbone for the 96-d checkpoint: error names the file and the shapes."""
    with pytest.raises(CheckpointMismatchError) as err:
        train_here(SEG_CFG, workspace / 'bad',
            cfg_options=[f'model.pretrained={pretrain_ckpt}', 'model.backbone.embed_dims=64',
                         'model.neck.embed_dim=64', 'model.decode_head.in_channels=[64,64,64,64]',
                         'model.auxiliary_head.in_channels=64', *_seg_data(workspace)])  # fmt: skip
    out = str(err.value)
    assert str(pretrain_ckpt) in out
    assert "shape mismatch: cls_token: checkpoint [1, 1, 96] vs model [1, 1, 64]" in out
    assert not list((workspace / "bad").glob("*.pth"))
