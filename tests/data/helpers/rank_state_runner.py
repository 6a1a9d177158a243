"""Test-only runner: ``SafeResumeRunner`` that also saves every rank's final state dict."""

import os.path as osp

import torch
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS

from lut_plugin.runtime import SafeResumeRunner


@RUNNERS.register_module()
class RankStateRunner(SafeResumeRunner):
    """Writes ``rank<r>_state.pth`` (the model's state dict) to the work dir after training."""

    def train(self):
        model = super().train()
        module = model.module if is_model_wrapper(model) else model
        torch.save(module.state_dict(), osp.join(self.work_dir, f"rank{self.rank}_state.pth"))
        return model
