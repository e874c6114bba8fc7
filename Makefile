# bncourse — set-up, tests and build targets.  `make lab` and `make test` are all a new user needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
BUILD := $(CURDIR)/build

# Keep Jupyter, IPython and matplotlib state out of $HOME.
export JUPYTER_CONFIG_DIR := $(CURDIR)/.jupyter/config
export JUPYTER_DATA_DIR := $(BUILD)/jupyter/data
export JUPYTER_RUNTIME_DIR := $(BUILD)/jupyter/runtime
export IPYTHONDIR := $(BUILD)/ipython
export MPLCONFIGDIR := $(BUILD)/mpl
export JUPYTER_PLATFORM_DIRS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export OMP_NUM_THREADS ?= 2

.PHONY: help setup lab test test-fast lint student grade autograder slides bench clean execute

help:
	@echo "make lab      set up .venv (once) and open JupyterLab on notebooks/"
	@echo "make lab STUDENT=1   the same on the student edition (build/student/notebooks)"
	@echo "make test     set up .venv (once) and run the whole test suite"
	@echo "make test-fast  unit and property tests only (no notebooks, browsers, subprocesses; < 2 min)"
	@echo "make lint     ruff + mypy + the layer contracts (lint-imports)"
	@echo "make student  build the student edition in build/student"
	@echo "make grade    grade submissions in SUBMISSIONS=... into build/grades"
	@echo "make autograder NOTEBOOK=03_forward_backward   the Gradescope autograder zip of one notebook"
	@echo "make slides   build offline reveal.js slides in build/slides"
	@echo "make bench    run the benchmarks, report in build/bench"
	@echo "make clean    remove build/ and caches (keeps .venv)"

# torch first, from the local CPU wheel: a bare `torch` requirement pulls a multi-GB GPU build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# `make lab STUDENT=1` opens the student edition (built by `make student` if it is not there yet;
# `make student` refreshes it, and refuses to overwrite notebooks a student changed).
LAB_DIR := $(if $(STUDENT),$(BUILD)/student/notebooks,notebooks)

lab: $(STAMP)
	mkdir -p $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR)
	$(if $(STUDENT),test -d $(LAB_DIR) || $(MAKE) student)
	$(BIN)/jupyter lab --notebook-dir=$(LAB_DIR) $(LAB_ARGS)

test: $(STAMP)
	mkdir -p $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not notebooks and not browser and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bncourse tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

student: $(STAMP)
	$(BIN)/bncourse release --out $(BUILD)/student $(RELEASE_ARGS)

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS='path/to/notebooks_or_dirs'"; exit 2; }
	$(BIN)/bncourse grade $(SUBMISSIONS) --out $(BUILD)/grades --jobs 2

# One Gradescope assignment per notebook: make autograder NOTEBOOK=03_forward_backward (none: the whole course).
autograder: $(STAMP)
	$(BIN)/bncourse autograder --gradescope $(if $(NOTEBOOK),--notebook $(NOTEBOOK)) \
		--out $(BUILD)/autograder$(if $(NOTEBOOK),-$(NOTEBOOK)).zip

slides: $(STAMP)
	$(BIN)/bncourse slides --out $(BUILD)/slides

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --out $(BUILD)/bench

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

# Execute notebooks in place (instructor source keeps its outputs): make execute [NB=notebooks/03_x.ipynb]
NB ?= notebooks/*.ipynb
execute: $(STAMP)
	mkdir -p $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR)
	for nb in $(NB); do $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 $$nb || exit 1; done
