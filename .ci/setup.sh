#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment with pinned torch and the
# project's dependencies. Idempotent: a second run installs nothing new.
# Knobs: VENV (default .venv in the checkout), PYTHON (default python3),
#        SKIP_METRICS=1 (leave out the metrics extra and the test-only JAX reference).
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
pip_install() {
  # pip's "Location ... is ignored" lines are noise from local index configs; pip's exit status is kept.
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$constraints" "$@" \
    2> >(grep -v "is ignored: it is neither" >&2)
}
if ! "$VENV/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
  echo "[setup] installing torch==2.14.1 torchvision==0.29.1"
  pip_install torch==2.14.1 torchvision==0.29.1
fi
echo "[setup] installing project requirements"
pip_install -r "$root/requirements-dev.txt"
if [ "${SKIP_METRICS:-0}" != "1" ]; then
  echo "[setup] installing the metrics extra and the test-only JAX reference"
  pip_install --no-deps -r "$root/requirements-metrics.txt"
  pip_install -r "$root/requirements-test-reference.txt"
  # flax.linen is all the reference model needs; its full dependency set (optax, orbax, tensorstore) is not.
  pip_install --no-deps flax==0.12.8 msgpack==1.2.4 absl-py==2.5.1
fi
"$VENV/bin/python" -c 'import torch, numpy, safetensors, av, einops, PIL; print("[setup] torch", torch.__version__)'
