#!/usr/bin/env bash
# Distributed training with torchrun (one process per GPU), through mmengine's
# `--launcher pytorch`.
#
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# Multi-node: run it on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set.
# PYTHON picks the interpreter (default: the repository's .venv made by scripts/setup.sh,
# else torchrun from PATH, else python -m torch.distributed.run).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS_DIR="$(cd "$(dirname "$0")" && pwd)"

if [ -z "${PYTHON:-}" ] && [ -x "$TOOLS_DIR/../.venv/bin/python" ]; then
  PYTHON="$TOOLS_DIR/../.venv/bin/python"
fi
if [ -z "${PYTHON:-}" ] && command -v torchrun >/dev/null 2>&1; then
  LAUNCH=(torchrun)
else
  LAUNCH=("${PYTHON:-python}" -m torch.distributed.run)
fi

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
"${LAUNCH[@]}" \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS_DIR/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
