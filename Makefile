# Two entry points, both work on a fresh machine (they install what they need first).
#   make demo   render a video into out/demo.mp4 (the demo model when shipped, else the reference snapshot)
#   make test   build the test environment (venv, ComfyUI host, Chromium) and run every test
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup host

setup:
	bash .ci/setup.sh

host: setup
	bash .ci/comfy_host.sh

# Until a trained demo model ships in stylegan_v/assets/, render the original-format reference
# snapshot (random weights, made by the original code): it exercises the whole pipeline.
DEMO_CKPT ?= $(firstword $(wildcard stylegan_v/assets/demo.safetensors) tests/fixtures/official_tiny/network-snapshot.pkl)

demo:
	SKIP_METRICS=1 bash .ci/setup.sh
	$(PY) -m stylegan_v render --checkpoint $(DEMO_CKPT) --seed 1 --motion-seed 2 --fps 30 --seconds 4 --batch 4 --out out/demo.mp4

test: host
	$(PY) -m pytest -q
