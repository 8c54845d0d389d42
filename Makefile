# Two entry points, both work on a fresh machine (they install what they need first).
#   make demo   render a video from the built-in demo model into out/demo.mp4: with .venv when
#               `make test` has built it, else with a light environment of its own (.venv-demo:
#               CPU-only torch and the renderer's requirements; see .ci/setup.sh)
#   make test   build the test environment (venv, ComfyUI host, Chromium) and run every test,
#               then the library and in-process node tests again under the oldest supported torch
VENV ?= .venv
DEMO_VENV ?= .venv-demo
# The demo model is 32x32: a 3x3 grid of videos, each smoothly enlarged 4x (384x384 in all).
DEMO_ARGS := --seed 1 --motion-seed 2 --fps 30 --seconds 6 --batch 9 --scale 4 --resize bicubic --out out/demo.mp4
PY := $(VENV)/bin/python
VENV_OLDEST ?= .venv-oldest
# What a ComfyUI user's older torch must run: the library and the nodes (training needs a newer one).
OLDEST_TESTS := tests/test_parity.py tests/test_precision.py tests/test_architecture.py tests/test_checkpoint.py \
	tests/test_legacy_pickle.py tests/test_render.py tests/test_editing.py tests/test_grids.py tests/test_cli.py \
	tests/test_demo_model.py tests/test_nodes_import.py tests/test_nodes.py tests/test_nodes_editing.py

.PHONY: demo test test-oldest setup host

setup:
	bash .ci/setup.sh

# ComfyUI's requirements go in before the metrics packages that setup.sh installs without their
# dependencies (its last step): pip's resolver checks the installed packages' dependencies whenever it
# installs something, and would print an ERROR about the ones those packages leave out on purpose.
host:
	SKIP_METRICS=1 bash .ci/setup.sh
	bash .ci/comfy_host.sh
	bash .ci/setup.sh

demo:
	@py=$$(VENV=$(VENV) DEMO_VENV=$(DEMO_VENV) bash .ci/setup.sh demo) && \
	  echo "$$py -m stylegan_v render $(DEMO_ARGS)" && \
	  $$py -m stylegan_v render $(DEMO_ARGS)

# The oldest torch installs (mostly a download) while the host is set up, not after the tests:
# two installs overlap well on 2 cores, where tests beside an install would be slowed and timed.
test:
	@VENV_OLDEST=$(VENV_OLDEST) bash .ci/oldest_torch.sh > $(VENV_OLDEST).log 2>&1 & oldest=$$!; \
	  $(MAKE) --no-print-directory host; host=$$?; wait $$oldest; installed=$$?; cat $(VENV_OLDEST).log; \
	  [ $$host = 0 ] && [ $$installed = 0 ]
	$(PY) -m pytest -q --durations=15
	$(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(OLDEST_TESTS)

test-oldest: host
	VENV_OLDEST=$(VENV_OLDEST) bash .ci/oldest_torch.sh
	$(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(OLDEST_TESTS)
