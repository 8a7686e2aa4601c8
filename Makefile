# dplpaper — the two set-up commands are `make reproduce` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODE ?= quick
# deterministic, quiet, offline-friendly defaults for every target
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export OMP_NUM_THREADS ?= 2

.PHONY: help venv reproduce notebooks book test test-unit test-notebooks bench refresh-outputs clean

help:
	@echo "make reproduce   install if needed, run every notebook (MODE=quick|full) with papermill, build the book"
	@echo "make test        install if needed, run pytest (unit tests + nbval over notebooks/)"
	@echo "make bench       run the benchmarks in benchmarks/ (writes benchmarks/results/*.json)"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dplpaper)" >/dev/null
	touch $(STAMP)

reproduce: venv
	$(PY) -m dplpaper.reproduce --mode $(MODE)

notebooks: venv
	$(PY) -m dplpaper.reproduce --mode $(MODE) --no-book

book: venv
	$(PY) -m dplpaper.reproduce --book-only

test: venv
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

test-unit: venv
	$(PY) -m pytest tests -p no:cacheprovider

test-notebooks: venv
	$(PY) -m pytest notebooks --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

bench: venv
	$(PY) -m benchmarks.run_all

# After a deliberate change of results: re-execute the notebooks (quick mode) with papermill, copy
# the executed notebooks back over notebooks/ and rewrite the key results they check
# (notebooks/key_results/*.json, written by dplpaper.keyresults when DPLPAPER_UPDATE_KEY_RESULTS=1).
# Key results are committed from ONE thread; `make test` (and CI, which also lowers PyTorch's CPU
# capability) runs with two, so every test run checks that they hold on another floating-point path.
refresh-outputs: venv
	DPLPAPER_UPDATE_KEY_RESULTS=1 OMP_NUM_THREADS=1 $(PY) -m dplpaper.reproduce --mode quick --no-book --refresh-outputs

clean:
	rm -rf book/_build book/executed results .pytest_cache
