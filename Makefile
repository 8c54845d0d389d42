# Two entry points, both work on a fresh machine (they install what they need first).
#   make demo   render a video from the built-in demo model into out/demo.mp4
#   make test   build the test environment (venv, ComfyUI host, Chromium) and run every test
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup host

setup:
	bash .ci/setup.sh

host: setup
	bash .ci/comfy_host.sh

demo:
	SKIP_METRICS=1 bash .ci/setup.sh
	$(PY) -m stylegan_v render --seed 1 --motion-seed 2 --fps 30 --seconds 6 --batch 9 --scale 4 --out out/demo.mp4

test: host
	$(PY) -m pytest -q
