#!/usr/bin/env bash
# Creates (or reuses) a virtual environment with pinned torch and the project's dependencies.
# Idempotent: a second run installs nothing new.
#
#   bash .ci/setup.sh        the full environment (.venv): torch 2.14.1 (the build the ComfyUI host
#                            and the tests pin), test tools, the metrics extra, the JAX reference
#   bash .ci/setup.sh demo   what rendering needs, and nothing more; prints the environment's python
#                            on stdout (everything else goes to stderr). Reuses .venv when it already
#                            renders; on a machine with an NVIDIA GPU builds .venv without the metrics;
#                            otherwise a light CPU-only .venv-demo (torch 2.13.0+cpu, ~1 GB)
#
# Knobs: VENV (default .venv in the checkout), DEMO_VENV (default .venv-demo), PYTHON (default python3),
#        SKIP_METRICS=1 (leave out the metrics extra and the test-only JAX reference),
#        TORCH_CPU_INDEX (an extra index with CPU builds of torch, e.g. PyTorch's own CPU wheel index,
#        for machines whose pip finds no torch==2.13.0+cpu).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$root/.venv}"
DEMO_VENV="${DEMO_VENV:-$root/.venv-demo}"
PY="${PYTHON:-python3}"
mode="${1:-full}"
TORCH_FULL="torch==2.14.1"
TORCHVISION_FULL="torchvision==0.29.1"
TORCH_CPU="torch==2.13.0+cpu"
RENDER_IMPORTS="import torch, numpy, safetensors, av, einops, tqdm"

if [ "$mode" = demo ]; then
  exec 3>&1 1>&2  # stdout carries only the python path, for the Makefile
fi

# What a fresh Debian/Ubuntu lacks most often, said in one line instead of a traceback.
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
  || { echo "[setup] error: Python 3.10 or newer is needed as '$PY' (set PYTHON=...)" >&2; exit 1; }
"$PY" -c 'import venv, ensurepip' 2>/dev/null \
  || { echo "[setup] error: '$PY' cannot create virtual environments; install python3-venv" \
            "(Debian/Ubuntu: sudo apt-get install python3-venv)" >&2; exit 1; }

make_venv() {
  if [ ! -x "$1/bin/python" ]; then
    echo "[setup] creating $1"
    "$PY" -m venv "$1"
  fi
}

# Never let pip resolve torch: every install carries exact pins in a constraints file.
pip_install() {  # pip_install VENV CONSTRAINTS ARGS...
  local venv="$1" constraints="$2"
  shift 2
  # pip's "Location ... is ignored" lines are noise from local index configs; pip's exit status is kept.
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -c "$constraints" "$@" \
    2> >(grep -v "is ignored: it is neither" >&2)
}

has_nvidia_gpu() {
  command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU
}

setup_demo_cpu() {
  make_venv "$DEMO_VENV"
  local constraints="$DEMO_VENV/constraints.txt"
  printf '%s\n' "$TORCH_CPU" > "$constraints"
  if ! "$DEMO_VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "[setup] installing $TORCH_CPU (CPU only: no NVIDIA GPU here)"
    local extra=()
    if [ -n "${TORCH_CPU_INDEX:-}" ]; then extra=(--extra-index-url "$TORCH_CPU_INDEX"); fi
    # --no-compile: torch ships thousands of modules and rendering imports a few hundred of them,
    # which Python byte-compiles on their first import instead.
    pip_install "$DEMO_VENV" "$constraints" --no-compile "${extra[@]}" "$TORCH_CPU" || {
      echo "[setup] error: pip found no $TORCH_CPU; set TORCH_CPU_INDEX to an index of CPU builds" \
           "(PyTorch publishes one: https://download.pytorch.org/whl/cpu)" >&2
      exit 1
    }
  fi
  echo "[setup] installing the renderer's requirements"
  pip_install "$DEMO_VENV" "$constraints" --no-compile -r "$root/requirements.txt"
  "$DEMO_VENV/bin/python" -c "$RENDER_IMPORTS" >/dev/null
}

setup_full() {
  make_venv "$VENV"
  local constraints="$VENV/constraints.txt"
  printf '%s\n%s\n' "$TORCH_FULL" "$TORCHVISION_FULL" > "$constraints"
  if ! "$VENV/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
    echo "[setup] installing $TORCH_FULL $TORCHVISION_FULL"
    pip_install "$VENV" "$constraints" "$TORCH_FULL" "$TORCHVISION_FULL"
  fi
  echo "[setup] installing project requirements"
  pip_install "$VENV" "$constraints" -r "$root/requirements-dev.txt"
  if [ "${SKIP_METRICS:-0}" != "1" ]; then
    echo "[setup] installing the metrics extra and the test-only JAX reference"
    pip_install "$VENV" "$constraints" -r "$root/requirements-test-reference.txt"
    # The packages installed without their declared dependencies come last: pip's resolver checks
    # the dependencies of what is already installed whenever it installs something, and would print
    # an ERROR about the ones left out on purpose (they pull in jax extras, opencv, an unpinned torch).
    pip_install "$VENV" "$constraints" --no-deps -r "$root/requirements-metrics.txt"
    # flax.linen is all the reference model needs; its full dependency set (optax, orbax, tensorstore) is not.
    pip_install "$VENV" "$constraints" --no-deps flax==0.12.8 msgpack==1.2.4 absl-py==2.5.1
  fi
  "$VENV/bin/python" -c 'import torch, numpy, safetensors, av, einops, PIL; print("[setup] torch", torch.__version__)'
}

case "$mode" in
  full)
    setup_full
    ;;
  demo)
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$RENDER_IMPORTS" 2>/dev/null; then
      echo "[setup] rendering with the existing $VENV"
      python="$VENV/bin/python"
    elif has_nvidia_gpu; then
      SKIP_METRICS=1 setup_full
      python="$VENV/bin/python"
    else
      setup_demo_cpu
      python="$DEMO_VENV/bin/python"
    fi
    echo "[setup] $("$python" -c 'import torch; print("torch", torch.__version__)')"
    echo "$python" >&3
    ;;
  *)
    echo "usage: bash .ci/setup.sh [full|demo]" >&2
    exit 2
    ;;
esac
