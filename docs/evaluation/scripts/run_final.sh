#!/bin/bash
# run_final.sh NAME CONFIG [cfg-options...]: the final toy config (data/generated/toy_shapes, 50 epochs)
name=$1; cfg=$2; shift 2
cd "$(dirname "$0")/../../.."; start=$(date +%s)
PYTHONPATH=$PWD OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/train.py $cfg --work-dir work_dirs/ev/$name --cfg-options "$@" > work_dirs/ev/$name.log 2>&1
echo "$name rc=$? seconds=$(( $(date +%s) - start ))" >> work_dirs/ev/done.txt
