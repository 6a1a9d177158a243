from .hooks import *  # noqa: F403
from .optim_wrapper_constructor import SkipFrozenOptimWrapperConstructor
from .runner import LUTRunner, adapt_config
from .seeded_sampler import LUTSeededSampler, SeededDataset, seed_everything

__all__ = [
    "LUTRunner",
    "LUTSeededSampler",
    "SeededDataset",
    "SkipFrozenOptimWrapperConstructor",
    "adapt_config",
    "seed_everything",
]
