# Two entry points on a fresh machine: `make reproduce` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PRESET ?= tiny
OUT ?= paper_figures/out/$(PRESET)

.PHONY: install reproduce test export readme

$(VENV)/.installed: settings.ini setup.py constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

## the main job: the tiny-preset reproduction into paper_figures/out/tiny/
reproduce: install
	$(BIN)/cortex-nb reproduce --preset $(PRESET) --out $(OUT)

## the tests: notebook test cells (nbdev_test), then pytest (export check, CLI, DDP, reproduction claims)
test: install
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/pytest -q tests

export:
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

readme:
	$(BIN)/jupyter nbconvert --to markdown --stdout nbs/index.ipynb > README.md
