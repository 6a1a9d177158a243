"""LUT's configs in mmpretrain's model hub: ``list_models('lut*')`` and ``get_model(name)``.

``lut_plugin/.mim`` mirrors mmpretrain's own ``.mim``: ``model-index.yml`` (importing
``configs/mmpretrain/metafile.yml``) and ``configs/``. In a source checkout both are links to
the repository's files; a built wheel carries copies (package data), so the hub works in an
installed package too, and ``ModelHub.get(name).config.filename`` names the installed config.

No entry has weights: ``get_model(name)`` builds the model from its config, and
``get_model(name, pretrained='work_dirs/<run>/epoch_<N>.pth')`` loads a local checkpoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mmpretrain.apis import ModelHub

MIM_ROOT = Path(__file__).parent / ".mim"
MODEL_INDEX = MIM_ROOT / "model-index.yml"


def register_model_index() -> None:
    """Register every model of ``model-index.yml`` with mmpretrain's ``ModelHub``."""
    if not MODEL_INDEX.is_file():  # a broken install: the registries still work without it
        warnings.warn(
            f"{MODEL_INDEX} not found: LUT's models are not in mmpretrain's model hub "
            "(reinstall lut-plugin, or check that lut_plugin/.mim links to the repository's "
            "model-index.yml and configs/)",
            stacklevel=2,
        )
        return
    ModelHub.register_model_index(MODEL_INDEX, config_prefix=MIM_ROOT)


register_model_index()
