# Two entry points on a fresh machine: `make reproduce` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PRESET ?= tiny
OUT ?= paper_figures/out/$(PRESET)

.PHONY: install reproduce test lint export readme train-world-vqgm replicates docs

# torch 2.14.1 + torchvision (a CUDA build, the pair on the project machines' disk) fill about 6 GiB: say so before pip runs out
$(VENV)/.installed: settings.ini setup.py constraints.txt $(wildcard docs/requirements.txt)
	@python3 -c "import shutil, sys; free = shutil.disk_usage('.').free / 2**30; \
	sys.exit(None if free >= 6.3 else f'make install: the virtual environment needs about 6.3 GiB free on this disk (torch and torchvision fill 6); {free:.1f} GiB are free')"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all]"  # the core and every extra (setup.py)
	touch $@

install: $(VENV)/.installed

## the main job: the tiny-preset reproduction into paper_figures/out/tiny/
reproduce: install
	$(BIN)/cortex-nb reproduce --preset $(PRESET) --out $(OUT)

## the world VQGM trained from scratch into cortex_nb/releases/world-vqgm-$(PRESET) (what the package ships)
train-world-vqgm: install
	$(BIN)/cortex-nb train-world-vqgm --preset $(PRESET)

## the reproduction once per seed on the shipped VQGM, compared in paper_figures/out/REPLICATES.md and .csv
SEEDS ?= 0 1 2 3 4
replicates: install
	$(BIN)/cortex-nb replicates --preset $(PRESET) --seeds $(SEEDS)

## the tests: notebook test cells (nbdev_test), then pytest (export check, CLI, DDP, reproduction claims)
test: install
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/pytest -q tests

## the house style: the sources formatted by ruff, the exported code linted (also run by tests/test_lint.py)
lint:
	$(BIN)/pytest -q tests/test_lint.py

export:
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

readme:
	$(BIN)/jupyter nbconvert --to markdown --stdout nbs/index.ipynb > README.md

## the documentation site into _site/: the README, every notebook of nbs/ executed (outputs cached in _build/), the API
$(VENV)/.docs-installed: docs/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -c constraints.txt -r docs/requirements.txt
	touch $@

docs: install $(VENV)/.docs-installed
	$(BIN)/sphinx-build -b html $(SPHINXOPTS) -d _build/doctrees docs/site _build/html
	rm -rf _site && cp -r _build/html _site
