"""``lut_plugin`` works with its core dependencies alone; each extra loads only when installed.

The checks run in a fresh interpreter whose import system refuses mmseg, lightly and timm, as in
an environment where only torch, mmengine, mmcv and mmpretrain are installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

EXTRAS = {"mmseg": "seg", "lightly": "lightly", "timm": "timm"}

BLOCK_EXTRAS = f"""
import importlib.abc, sys

class BlockExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(EXTRAS)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)

sys.meta_path.insert(0, BlockExtras())
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, str]:
    """Every check in one interpreter without the extras (one start-up, not four): its
    ``CHECK name: result`` lines by name."""
    tmp = tmp_path_factory.mktemp("timm")
    src, dst = tmp / "in.pth", tmp / "out.safetensors"
    script = BLOCK_EXTRAS + textwrap.dedent(
        f"""
        import importlib, math, runpy, sys, torch
        import lut_plugin
        from mmpretrain.registry import MODELS
        sys.path.insert(0, 'tests')
        from conftest import build_tiny_lut, tiny_lut_cfg

        torch.manual_seed(0)
        model = MODELS.build(tiny_lut_cfg())
        model.init_weights()
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        teacher_before = [p.clone() for p in model.teacher.parameters()]
        views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
        losses = model.loss(views)
        sum(losses.values()).backward()
        optimizer.step()
        model.update_teacher(0, 10)
        after = model.teacher.parameters()
        moved = any(not torch.equal(a, b) for a, b in zip(teacher_before, after))
        loaded = sorted(m for m in ('mmseg', 'lightly', 'timm') if m in sys.modules)
        finite = all(math.isfinite(v.item()) for v in losses.values())
        print('CHECK step:', sorted(losses), finite, moved, loaded)

        for adapter in ('mmseg', 'lightly'):
            try:
                importlib.import_module('lut_plugin.' + adapter)
            except ImportError as exc:
                print(f'CHECK {{adapter}}:', exc)
            else:
                print(f'CHECK {{adapter}}: imported')

        torch.save({{'state_dict': build_tiny_lut().state_dict()}}, {str(src)!r})
        sys.argv = ['convert_checkpoint.py', '--to', 'timm', {str(src)!r}, {str(dst)!r}]
        try:
            runpy.run_path('tools/convert_checkpoint.py', run_name='__main__')
        except SystemExit as exc:
            print('CHECK timm:', exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (line.split(": ", 1) for line in proc.stdout.splitlines() if line.startswith("CHECK "))
    return {name.removeprefix("CHECK "): result for name, result in lines}


def test_pretraining_step_with_core_dependencies_only(results):
    assert results["step"] == "['loss_bc', 'loss_mim'] True True []"


@pytest.mark.parametrize("adapter, package", [("mmseg", "mmseg"), ("lightly", "lightly")])
def test_adapter_without_its_package_names_the_extra(results, adapter, package):
    assert f'pip install "lut-plugin[{EXTRAS[package]}]"' in results[adapter], results[adapter]


def test_timm_export_without_timm_names_the_extra(results):
    assert 'pip install "lut-plugin[timm]"' in results["timm"], results["timm"]
