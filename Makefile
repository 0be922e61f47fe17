# Two commands: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
EDITOR := frontend/dist/index.html
MODELS ?=
DATA ?= data
HOST ?= 127.0.0.1
PORT ?= 8188

.PHONY: install run test lint bench gpu-check clean

install: $(STAMP) $(NODE_STAMP) $(CHROMIUM)

# torch first, pinned to the CPU wheel: the project's own range then installs nothing more.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	# spandrel (upscale models) without its dependencies: it names torchvision, which has no
	# CPU build for this torch; models/upscale_model.py imports it without torchvision.
	$(PIP) install --quiet --no-deps "spandrel>=0.4,<0.5"
	$(PIP) install --quiet -e ".[dev,ray]"
	touch $(STAMP)

# Node.js comes from the distribution when the machine has none.
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# Debian's Chromium drives the browser tests (no browser downloads at run time).
$(CHROMIUM):
	apt-get update && apt-get install -y --no-install-recommends chromium

$(EDITOR): $(NODE_STAMP) $(shell find frontend/src frontend/index.html frontend/vite.config.ts workflows -type f 2>/dev/null)
	npm run build

# The editor and the server. With no MODELS (e.g. MODELS=~/ComfyUI/models), the server
# offers a tiny random-weight demo checkpoint so the editor is usable at once.
run: $(STAMP) $(EDITOR)
	$(VENV)/bin/latentloom serve --host $(HOST) --port $(PORT) --data $(DATA) $(if $(MODELS),--models $(MODELS))

# Everything, the slow full-size tests included (a bare `pytest` leaves those out).
test: $(STAMP) $(NODE_STAMP) $(CHROMIUM) $(EDITOR) lint
	npm test
	npm run test:browser
	$(PY) -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check backend nodes tests bench setup.py
	$(VENV)/bin/ruff format --check backend nodes tests bench setup.py
	MYPYPATH=backend $(VENV)/bin/mypy --explicit-package-bases backend/latentloom nodes

bench: $(STAMP) $(NODE_STAMP) $(CHROMIUM) $(EDITOR)
	$(PY) -m bench.run_all
	npm run bench:editor

# Our engine against diffusers' pipelines on the GPU (it/s, oracle, SDXL VAE NaN, peak VRAM);
# without CUDA a dry run of the same plumbing at tiny sizes on the CPU.
gpu-check: $(STAMP)
	$(PY) -m bench.gpu_check

clean:
	rm -rf $(VENV) node_modules frontend/dist .pytest_cache
