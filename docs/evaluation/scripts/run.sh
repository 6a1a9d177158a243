#!/bin/bash
# run.sh NAME CONFIG DATA EPOCHS [cfg-options...]  -> work_dirs/ev/NAME
name=$1; cfg=$2; data=$3; ep=$4; shift 4
cd "$(dirname "$0")/../../.."
start=$(date +%s)
PYTHONPATH=$PWD OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/train.py $cfg --work-dir work_dirs/ev/$name \
  --cfg-options train_dataloader.dataset.data_root=$data train_dataloader.dataset.num_train=2000 train_dataloader.dataset.num_val=500 \
  train_cfg.max_epochs=$ep param_scheduler.1.T_max=$((ep-3)) param_scheduler.1.end=$ep default_hooks.logger.interval=16 "$@" > work_dirs/ev/$name.log 2>&1
echo "$name rc=$? seconds=$(( $(date +%s) - start ))" >> work_dirs/ev/done.txt
grep "Epoch(knn)" work_dirs/ev/$name.log | tail -1 >> work_dirs/ev/done.txt
