#!/usr/bin/env bash
# A second virtual environment with the oldest torch the pack declares (pyproject.toml), so the
# library and in-process node tests also run under a torch that is not ours: a ComfyUI user's
# torch rarely is. Idempotent: a second run installs nothing new.
#
# torch 2.2.2 comes from PyPI as a CUDA build (~2.5 GB with its nvidia libraries, ~3 minutes
# here); it runs on the CPU. torch 2.2 was built against numpy 1.x, hence numpy<2.
# Knobs: VENV_OLDEST (default .venv-oldest in the checkout), PYTHON (default python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV_OLDEST:-$root/.venv-oldest}"
PY="${PYTHON:-python3}"
TORCH_OLDEST=2.2.2
TORCHVISION_OLDEST=0.17.2
t_start=$(date +%s)
log() { echo "[oldest-torch $(( $(date +%s) - t_start ))s] $*"; }

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
constraints="$VENV/constraints.txt"
printf 'torch==%s\ntorchvision==%s\nnumpy<2\n' "$TORCH_OLDEST" "$TORCHVISION_OLDEST" > "$constraints"
pip_install() {
  # pip's "Location ... is ignored" lines are noise from local index configs; pip's exit status is kept.
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$constraints" "$@" \
    2> >(grep -v "is ignored: it is neither" >&2)
}
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_OLDEST')" 2>/dev/null; then
  log "installing torch==$TORCH_OLDEST torchvision==$TORCHVISION_OLDEST (PyPI's CUDA build; runs on the CPU)"
  pip_install "torch==$TORCH_OLDEST" "torchvision==$TORCHVISION_OLDEST"
fi
log "installing the project's and ComfyUI's requirements"
# ComfyUI's pins, less those that follow torch (the constraints above choose them).
pip_install -r "$root/requirements-dev.txt" -r <(grep -v -E '^(kornia|spandrel)==' "$root/.ci/comfy_requirements.txt") kornia spandrel
"$VENV/bin/python" -c 'import torch, numpy, safetensors, av, einops, aiohttp, transformers; print("[oldest-torch] torch", torch.__version__)'
