# Two entry points on a fresh machine: `make reproduce` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PRESET ?= tiny
OUT ?= paper_figures/out/$(PRESET)

.PHONY: install reproduce test export readme

# torch 2.14.1 + torchvision (a CUDA build, the pair on the project machines' disk) fill about 6 GiB: say so before pip runs out
$(VENV)/.installed: settings.ini setup.py constraints.txt
	@python3 -c "import shutil, sys; free = shutil.disk_usage('.').free / 2**30; \
	sys.exit(None if free >= 6.3 else f'make install: the virtual environment needs about 6.3 GiB free on this disk (torch and torchvision fill 6); {free:.1f} GiB are free')"
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
