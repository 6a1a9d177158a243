"""The ``lut_plugin`` registry scope: ``init_cfg=dict(type='Pretrained', _scope_='lut_plugin')``.

mmengine applies an initializer named ``'Pretrained'`` after all others (and mmpretrain's ViTs
then keep the loaded position embedding), so the strict loader keeps that name in its own scope
instead of replacing mmengine's everywhere.
"""

from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

WEIGHT_INITIALIZERS = Registry(
    "weight initializer",
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    scope="lut_plugin",
    locations=["lut_plugin.runtime.loading"],
)
