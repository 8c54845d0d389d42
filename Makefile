# Two entry points, both work on a fresh machine (they install what they need first).
#   make demo   render a video from the built-in demo model into out/demo.mp4
#   make test   build the test environment (venv, ComfyUI host, Chromium) and run every test,
#               then the library and in-process node tests again under the oldest supported torch
VENV ?= .venv
PY := $(VENV)/bin/python
VENV_OLDEST ?= .venv-oldest
# What a ComfyUI user's older torch must run: the library and the nodes (training needs a newer one).
OLDEST_TESTS := tests/test_parity.py tests/test_precision.py tests/test_architecture.py tests/test_checkpoint.py \
	tests/test_legacy_pickle.py tests/test_render.py tests/test_editing.py tests/test_grids.py tests/test_cli.py \
	tests/test_demo_model.py tests/test_nodes_import.py tests/test_nodes.py tests/test_nodes_editing.py

.PHONY: demo test test-oldest setup host

setup:
	bash .ci/setup.sh

host: setup
	bash .ci/comfy_host.sh

demo:
	SKIP_METRICS=1 bash .ci/setup.sh
	$(PY) -m stylegan_v render --seed 1 --motion-seed 2 --fps 30 --seconds 6 --batch 9 --scale 4 --out out/demo.mp4

test: host
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-oldest

test-oldest: host
	VENV_OLDEST=$(VENV_OLDEST) bash .ci/oldest_torch.sh
	$(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(OLDEST_TESTS)
