"""The ``lut_plugin`` scope for ``init_cfg=dict(type='Pretrained', _scope_='lut_plugin')``:
mmengine applies ``'Pretrained'`` last, so the strict loader keeps that name in its own scope."""

from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

WEIGHT_INITIALIZERS = Registry(
    "weight initializer",
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    scope="lut_plugin",
    locations=["lut_plugin.runtime.loading"],
)
