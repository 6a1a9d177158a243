#!/usr/bin/env bash
# [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] [PYTHON=...] \
# tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]: one srun task per
# GPU, mmengine's --launcher slurm. An empty WORK_DIR is refused (it would train into ./).
set -euo pipefail
[ $# -ge 4 ] && [ -n "$3" ] && [ -n "$4" ] || {
  echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2; exit 2; }
DIR=$(cd "$(dirname "$0")" && pwd)
[ -x "$DIR/../.venv/bin/python" ] && PYTHON=${PYTHON:-$DIR/../.venv/bin/python}
set -x
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" srun -p "$1" --job-name="$2" \
    --gres=gpu:"${GPUS_PER_NODE:-8}" --ntasks="${GPUS:-8}" --ntasks-per-node="${GPUS_PER_NODE:-8}" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$DIR/train.py" "$3" --work-dir="$4" --launcher=slurm "${@:5}"
