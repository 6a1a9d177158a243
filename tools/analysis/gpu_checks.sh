#!/usr/bin/env bash
# The GPU measurements still pending (docs/performance.md), most important first, each in
# its own process, until a time budget is spent. Run from the repository root on a machine
# with the stack installed (torch, mmengine, mmpretrain, mmcv; mmcv without ops suffices):
#
#   bash tools/analysis/gpu_checks.sh OUT_DIR [BUDGET_S=540] [SIZE=vit-b] [BATCH=512] [DEVICE=cuda]
#
# ITERS (default 100) sets the real loop's iterations, LOOP_CONFIG (default
# configs/mmpretrain/lut_vitb_400e.py) its config; STEP_ARGS adds arguments to every step
# run and LOOP_COMPILE (default --compile) replaces the loop's (a CPU dry run:
# STEP_ARGS="--compile-backend eager" LOOP_COMPILE= ... SIZE=tiny BATCH=4 DEVICE=cpu).
# OUT_DIR/steps.jsonl: one JSON line per step variant (benchmark_lut_vs_mae.py's worker:
# FLOPs, median step time, images/s, peak memory); OUT_DIR/loop.txt: time and data_time of
# the real tools/train.py loop per variant; OUT_DIR/log.txt: everything else.
set -u
OUT=$1; BUDGET=${2:-540}; SIZE=${3:-vit-b}; BATCH=${4:-512}; DEVICE=${5:-cuda}
PY=${PY:-python}; ITERS=${ITERS:-100}; LOOP_COMPILE=${LOOP_COMPILE---compile}
LOOP_CONFIG=${LOOP_CONFIG:-configs/mmpretrain/lut_vitb_400e.py}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
START=$(date +%s)

left() { echo $((BUDGET - ($(date +%s) - START))); }

step() {  # step NAME ARGS...: one training step variant (whole loss compiled unless ARGS differ)
  local name=$1; shift
  [ "$(left)" -lt 60 ] && { echo "skip $name"; return; }
  echo "=== $name" >>"$OUT/log.txt"
  local line
  line=$(timeout "$(left)" $PY tools/analysis/benchmark_lut_vs_mae.py --size "$SIZE" \
    --batch "$BATCH" --device "$DEVICE" --amp --steps 10 --warmup 3 --compile \
    --compile-scope loss "$@" ${STEP_ARGS:-} 2>>"$OUT/log.txt" | tail -n 1)
  case $line in
    "{"*) echo "{\"variant\": \"$name\", ${line#\{}" >>"$OUT/steps.jsonl"
          echo "$name done at $(( $(date +%s) - START )) s" ;;
    *) echo "$name FAILED at $(( $(date +%s) - START )) s (log.txt)" ;;
  esac
}

# The option's step (the baseline), with CUDA graphs, with compiled blocks only (what
# tools/train.py --compile compiles: the bare step of the loop below), and MAE.
step lut-fused-gelu --step-worker lut --fuse-teacher-gelu
step lut-fused-gelu-cudagraphs --step-worker lut --fuse-teacher-gelu --compile-mode reduce-overhead
step lut-fused-gelu-blocks --step-worker lut --fuse-teacher-gelu --compile-scope blocks
step mae --step-worker mae

# The real loop: lut_vitb_400e.py on generated JPEGs, as configured (LUTRuntimeInfoHook),
# profiled, with mmengine's RuntimeInfoHook (one host synchronisation per iteration), and in bf16.
[ "$(left)" -lt 150 ] && { echo "no time left for the loop"; exit 0; }
mkdir -p "$OUT/jpegs"
$PY -c "import sys; sys.path.insert(0, 'tools/analysis')
from pathlib import Path; from benchmark_lut_vs_mae import _generate_jpegs
_generate_jpegs(Path('$OUT/jpegs'), 64, 500, 375, 90)"
cat >"$OUT/loop_cfg.py" <<EOF
_base_ = '$(realpath "$LOOP_CONFIG")'
train_dataloader = dict(
    batch_size=$BATCH,
    dataset=dict(
        _delete_=True, type='RepeatDataset', times=$(( (ITERS * BATCH + 63) / 64 )),
        dataset=dict(type='CustomDataset', data_root='$OUT/jpegs', with_label=False,
                     pipeline={{_base_.lut_train_pipeline}})))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1000, save_last=False))
EOF
loop() {  # loop NAME CFG-OPTIONS...: ITERS iterations of tools/train.py --compile
  local name=$1; shift
  local opts=(); [ $# -gt 0 ] && opts=(--cfg-options "$@")
  [ "$(left)" -lt 90 ] && { echo "skip loop $name"; return; }
  echo "=== loop $name" >>"$OUT/log.txt"
  timeout "$(left)" $PY tools/train.py "$OUT/loop_cfg.py" --work-dir "$OUT/loop_$name" $LOOP_COMPILE \
    "${opts[@]}" >>"$OUT/log.txt" 2>&1
  $PY - "$OUT/loop_$name" "$name" >>"$OUT/loop.txt" <<'PY'
import statistics, sys
from pathlib import Path

sys.path.insert(0, "tools/analysis")
from compare_lut_mae import read_scalars

try:
    timed = read_scalars(Path(sys.argv[1]))[1]
except FileNotFoundError:
    timed = []
last = max((r["iter"] for r in timed), default=0)
late = [r for r in timed if r["iter"] > last / 2]  # the second half: compiled and warm
print(sys.argv[2], "iterations", [r["iter"] for r in late],
      "time", round(statistics.mean(r["time"] for r in late), 4) if late else None,
      "data_time", round(statistics.mean(r["data_time"] for r in late), 4) if late else None)
PY
  echo "loop $name done at $(( $(date +%s) - START )) s"
}
loop as-configured
# Where the loop's time beyond the bare step goes: mmengine's ProfilerHook records 3 warm
# iterations of a 40-iteration run (kernels and the host's operators) and prints its table
# (self device time first; the device total over 3 against 3 x the logged time is the idle
# share) into log.txt.
P="default_hooks.profiler"
loop profiled "train_dataloader.dataset.times=$(( (40 * BATCH + 63) / 64 ))" \
  $P.type=ProfilerHook $P.by_epoch=False $P.profile_times=36 \
  $P.activity_with_cuda=$([ "$DEVICE" = cpu ] && echo False || echo True) \
  $P.schedule.wait=30 $P.schedule.warmup=2 $P.schedule.active=3 $P.schedule.repeat=1 \
  $P.on_trace_ready.type=log_trace $P.on_trace_ready.sort_by=self_device_time_total \
  $P.on_trace_ready.row_limit=40
loop mmengine-runtime-info default_hooks.runtime_info.type=RuntimeInfoHook
loop bf16 optim_wrapper.dtype=bfloat16
step lut-fused-gelu-mem-efficient --step-worker lut --fuse-teacher-gelu --sdpa-backend mem_efficient
echo "all done at $(( $(date +%s) - START )) s"
