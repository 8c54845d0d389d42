#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment with pinned torch and the
# project's dependencies. Idempotent: a second run installs nothing new.
# Knobs: VENV (default .venv in the checkout), PYTHON (default python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$root/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
# Never let pip resolve torch: every install carries these exact pins.
constraints="$VENV/constraints.txt"
printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$constraints"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$constraints")
if ! "$VENV/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
  echo "[setup] installing torch==2.14.1 torchvision==0.29.1"
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v "is ignored: it is neither" || true
fi
echo "[setup] installing project requirements"
"${pip[@]}" -r "$root/requirements-dev.txt" 2>&1 | grep -v "is ignored: it is neither" || true
if [ "${SKIP_METRICS:-0}" != "1" ]; then
  echo "[setup] installing the metrics extra and the test-only JAX reference"
  "${pip[@]}" --no-deps -r "$root/requirements-metrics.txt" 2>&1 | grep -v "is ignored: it is neither" || true
  "${pip[@]}" -r "$root/requirements-test-reference.txt" 2>&1 | grep -v "is ignored: it is neither" || true
  # flax.linen is all the reference model needs; its full dependency set (optax, orbax, tensorstore) is not.
  "${pip[@]}" --no-deps flax==0.12.8 msgpack==1.2.4 absl-py==2.5.1 2>&1 | grep -v "is ignored: it is neither" || true
fi
"$VENV/bin/python" -c 'import torch, numpy, safetensors, av, einops; print("[setup] torch", torch.__version__)'
