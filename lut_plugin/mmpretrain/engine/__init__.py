from .hooks import *  # noqa: F403
from .runner import LUTRunner, adapt_config
from .seeded_sampler import LUTSeededSampler, SeededDataset, seed_everything

__all__ = ["LUTRunner", "LUTSeededSampler", "SeededDataset", "adapt_config", "seed_everything"]
