#!/usr/bin/env bash
# tools/dist_train.sh CONFIG GPUS [train.py args...]: one process per GPU (torchrun, mmengine's
# --launcher pytorch). Several nodes: NNODES, NODE_RANK, MASTER_ADDR, PORT on each.
# PYTHON: the interpreter (default: the repository's .venv, else python).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG GPUS [train.py args...]" >&2; exit 2; }
DIR=$(cd "$(dirname "$0")" && pwd)
[ -x "$DIR/../.venv/bin/python" ] && PYTHON=${PYTHON:-$DIR/../.venv/bin/python}
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$2" --master_port="${PORT:-29500}" \
    "$DIR/train.py" "$1" --launcher pytorch "${@:3}"
