#!/bin/bash
# evalrun.sh DATA RUN... : linear probe + k-NN of the last checkpoint of each run (student; teacher for LUT)
cd "$(dirname "$0")/../../.."; data=$1; shift; args=()
for r in "$@"; do
  cfg=$(ls work_dirs/ev/$r/*.py | grep -v run_config | head -1); ck=$(cat work_dirs/ev/$r/last_checkpoint)
  args+=(--model $r $cfg $ck)
  if grep -q "type='LUT'" $cfg; then args+=(--model ${r}_T $cfg $ck teacher); fi
done
PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/analysis/evaluate_features.py "${args[@]}" --data $data 2>&1 | grep "^| [a-z]"
