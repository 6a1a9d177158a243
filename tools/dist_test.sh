#!/usr/bin/env bash
# tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]: as dist_train.sh, for test.py.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2; exit 2; }
DIR=$(cd "$(dirname "$0")" && pwd)
[ -x "$DIR/../.venv/bin/python" ] && PYTHON=${PYTHON:-$DIR/../.venv/bin/python}
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$3" --master_port="${PORT:-29500}" \
    "$DIR/test.py" "$1" "$2" --launcher pytorch "${@:4}"
