"""LUT's configs in mmpretrain's model hub (``list_models('lut*')``, ``get_model(name)``), from
``lut_plugin/.mim`` (links in a checkout, copies in a wheel); no entry has weights."""

from __future__ import annotations

import warnings
from pathlib import Path

from mmpretrain.apis import ModelHub

MIM_ROOT = Path(__file__).parent / ".mim"
MODEL_INDEX = MIM_ROOT / "model-index.yml"


if MODEL_INDEX.is_file():
    ModelHub.register_model_index(MODEL_INDEX, config_prefix=MIM_ROOT)
else:  # a broken install: the registries still work without it
    warnings.warn(
        f"{MODEL_INDEX} not found: LUT's models are not in mmpretrain's model hub (reinstall "
        "lut-plugin, or check that lut_plugin/.mim links to model-index.yml and configs/)",
        stacklevel=2,
    )
