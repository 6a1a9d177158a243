#!/usr/bin/env bash
# One command from a fresh machine to a working lut-plugin environment.
#
#   bash scripts/setup.sh            # creates ./.venv
#   VENV=/path/to/venv bash scripts/setup.sh
#
# mmcv 2.1.0 has no wheel for torch 2.14, so its ops are compiled from the sdist
# (about 8 minutes on 2 cores). The built wheel is cached in $LUT_WHEEL_CACHE
# (default ~/.cache/lut-plugin/wheels) so only the first install pays for it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
WHEEL_CACHE="${LUT_WHEEL_CACHE:-$HOME/.cache/lut-plugin/wheels}"
PYTHON="${PYTHON:-python3}"

TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION="2.1.0"

log() { printf '[setup] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

log "installing $TORCH_SPEC"
"${PIP[@]}" $TORCH_SPEC
"${PIP[@]}" wheel ninja "mmengine==0.10.7"

mkdir -p "$WHEEL_CACHE"
TORCH_TAG="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
MMCV_WHEEL_DIR="$WHEEL_CACHE/mmcv-$MMCV_VERSION-torch$TORCH_TAG-cpu"
if ! ls "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION with CPU ops (one-off, ~8 min)"
  # mmcv's setup.py needs an old setuptools; the final install below restores the pinned one.
  "${PIP[@]}" "setuptools<70"
  BUILD="$(mktemp -d)"
  trap 'rm -rf "$BUILD"' EXIT
  "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
    "mmcv==$MMCV_VERSION" -d "$BUILD"
  tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
  SRC="$BUILD/mmcv-$MMCV_VERSION"
  # torch 2.14's headers need C++20; mmcv hard-codes c++14 / c++17.
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
"${PIP[@]}" --no-deps "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl

log "installing lut-plugin (editable) with its pinned dependencies and test extras"
"${PIP[@]}" -e "$ROOT[tests]"

"$PY" - <<'PY'
import mmcv.ops  # noqa: F401  (mmseg needs the compiled ops)
import mmpretrain, mmseg, mmseg.models, lightly, timm, torch  # noqa: E401,F401
import lut_plugin  # noqa: F401
print("[setup] ok: torch", torch.__version__, "mmcv", mmcv.__version__,
      "mmpretrain", mmpretrain.__version__, "mmseg", mmseg.__version__)
PY
log "done. Activate with: source $VENV/bin/activate"
