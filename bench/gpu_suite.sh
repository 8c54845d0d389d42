#!/usr/bin/env bash
# Runs the GPU suite (bench/gpu_suite.py): bench/gpu_suite.sh OUTDIR [--dry-run] [--only SECTION,...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" "$here/gpu_suite.py" "$@"
