#!/usr/bin/env bash
# The pinned development environment (what CI uses): one command from a fresh machine.
#
#   bash scripts/setup.sh            # creates ./.venv
#   VENV=/path/to/venv bash scripts/setup.sh
#
# Versions come from requirements/constraints.txt. mmcv publishes no wheel for this torch on
# PyPI, and mmsegmentation needs mmcv's compiled ops, so mmcv is compiled from its sdist once
# (about 17 minutes on 2 cores) and the wheel cached in $LUT_WHEEL_CACHE (default
# ~/.cache/lut-plugin/wheels): later runs take a few minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
WHEEL_CACHE="${LUT_WHEEL_CACHE:-$HOME/.cache/lut-plugin/wheels}"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"

log() { printf '[setup] %s\n' "$*"; }
pinned() { sed -n "s/^$1==//p" "$CONSTRAINTS"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

log "installing torch $(pinned torch), torchvision $(pinned torchvision)"
"${PIP[@]}" -c "$CONSTRAINTS" torch torchvision wheel ninja mmengine

MMCV_VERSION="$(pinned mmcv)"
TORCH_TAG="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
MMCV_WHEEL_DIR="$WHEEL_CACHE/mmcv-$MMCV_VERSION-torch$TORCH_TAG-cpu"
mkdir -p "$WHEEL_CACHE"
if ! ls "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION with CPU ops (once, about 17 min on 2 cores)"
  # mmcv's setup.py imports pkg_resources and torch: an old setuptools, no build isolation.
  "${PIP[@]}" "setuptools<70"
  BUILD="$(mktemp -d)"
  trap 'rm -rf "$BUILD"' EXIT
  "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
    "mmcv==$MMCV_VERSION" -d "$BUILD"
  tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
  SRC="$BUILD/mmcv-$MMCV_VERSION"
  # torch >= 2.10's headers need C++20; mmcv hard-codes c++14 / c++17.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
  mkdir -p "$MMCV_WHEEL_DIR.partial"
  (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
    "$PY" -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps \
    . -w "$MMCV_WHEEL_DIR.partial")
  # Publish the cache entry only once the wheel is complete.
  rm -rf "$MMCV_WHEEL_DIR" && mv "$MMCV_WHEEL_DIR.partial" "$MMCV_WHEEL_DIR"
else
  log "using cached mmcv wheel from $MMCV_WHEEL_DIR"
fi

log "installing lut-plugin (editable) with every extra, pinned"
"${PIP[@]}" -c "$CONSTRAINTS" "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl \
  setuptools -e "$ROOT[seg,lightly,timm,tests]"

"$PY" - <<'PY'
import mmcv.ops  # noqa: F401  (mmseg needs the compiled ops)
import mmpretrain, mmseg, mmseg.models, lightly, timm, torch  # noqa: E401,F401
import lut_plugin  # noqa: F401
print("[setup] ok: torch", torch.__version__, "mmcv", mmcv.__version__,
      "mmpretrain", mmpretrain.__version__, "mmseg", mmseg.__version__)
PY
log "done. Activate with: source $VENV/bin/activate"
