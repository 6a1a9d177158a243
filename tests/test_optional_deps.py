"""``lut_plugin`` works with its core dependencies alone; each extra loads only when installed.

Each check runs in a fresh interpreter whose import system refuses mmseg, lightly and timm, as
in an environment where only torch, mmengine, mmcv and mmpretrain are installed.
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


def run_without_extras(code: str) -> subprocess.CompletedProcess:
    script = BLOCK_EXTRAS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_pretraining_step_with_core_dependencies_only():
    proc = run_without_extras(
        """
        import math, sys, torch
        import lut_plugin
        from mmpretrain.registry import MODELS
        sys.path.insert(0, 'tests')
        from conftest import tiny_lut_cfg

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
        print(sorted(losses), all(math.isfinite(v.item()) for v in losses.values()), moved, loaded)
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "['loss_bc', 'loss_mim'] True True []"


@pytest.mark.parametrize("adapter, package", [("mmseg", "mmseg"), ("lightly", "lightly")])
def test_adapter_without_its_package_names_the_extra(adapter, package):
    proc = run_without_extras(
        f"""
        import lut_plugin
        try:
            import lut_plugin.{adapter}
        except ImportError as exc:
            print(exc)
        else:
            print('imported')
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    message = proc.stdout.strip().splitlines()[-1]
    assert f'pip install "lut-plugin[{EXTRAS[package]}]"' in message, message


def test_timm_export_without_timm_names_the_extra(tmp_path):
    src, dst = tmp_path / "in.pth", tmp_path / "out.safetensors"
    proc = run_without_extras(
        f"""
        import runpy, sys, torch
        sys.path.insert(0, 'tests')
        from conftest import build_tiny_lut
        torch.save({{'state_dict': build_tiny_lut().state_dict()}}, {str(src)!r})
        sys.argv = ['convert_checkpoint.py', '--to', 'timm', {str(src)!r}, {str(dst)!r}]
        try:
            runpy.run_path('tools/convert_checkpoint.py', run_name='__main__')
        except SystemExit as exc:
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'pip install "lut-plugin[timm]"' in proc.stdout.strip().splitlines()[-1], proc.stdout
