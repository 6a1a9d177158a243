#!/usr/bin/env bash
# [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] [PYTHON=...] \
# tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]: as slurm_train.sh.
set -euo pipefail
[ $# -ge 4 ] && [ -n "$3" ] && [ -n "$4" ] || {
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2; exit 2; }
DIR=$(cd "$(dirname "$0")" && pwd)
[ -x "$DIR/../.venv/bin/python" ] && PYTHON=${PYTHON:-$DIR/../.venv/bin/python}
set -x
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" srun -p "$1" --job-name="$2" \
    --gres=gpu:"${GPUS_PER_NODE:-8}" --ntasks="${GPUS:-8}" --ntasks-per-node="${GPUS_PER_NODE:-8}" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$DIR/test.py" "$3" "$4" --launcher=slurm "${@:5}"
