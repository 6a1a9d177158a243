# The toy LUT config through a runner that saves each rank's final weights
# (tests/data/helpers/rank_state_runner.py; PYTHONPATH must include that folder).
_base_ = "../../../configs/mmpretrain/lut_vit-tiny_toy_cpu.py"

custom_imports = dict(imports=["lut_plugin", "rank_state_runner"], allow_failed_imports=False)
runner_type = "RankStateRunner"
