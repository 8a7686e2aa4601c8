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
# one thread per process (dplpaper/threads.py: measured on a busy machine); the cores are used by
# running notebook groups (reproduce --jobs) and tests (pytest-xdist) side by side
export OMP_NUM_THREADS ?= 1
# One floating-point path on every x86-64 CPU with AVX2 (issue 12): the key results are committed
# and checked on it, so another CPU rounds the same way instead of relying on tolerances alone.
# PyTorch's own kernels at their baseline ISA; oneDNN (the LSTM) capped at AVX2; MKL (matrix
# products) in its conditional-numerical-reproducibility mode COMPATIBLE, the one documented to
# round alike on Intel and AMD (MKL_CBWR=AVX2 took another code path on this AMD EPYC: seen);
# numpy's AVX-512 loops off; OpenBLAS (numpy, scipy) on its Haswell kernels.
export ATEN_CPU_CAPABILITY ?= default
ifeq ($(shell uname -m),x86_64)
export ONEDNN_MAX_CPU_ISA ?= AVX2
export MKL_CBWR ?= COMPATIBLE
export NPY_DISABLE_CPU_FEATURES ?= X86_V4 AVX512_ICL AVX512_SPR
export OPENBLAS_CORETYPE ?= Haswell
endif
JOBS ?= 2

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
	$(PY) -m dplpaper.reproduce --mode $(MODE) --jobs $(JOBS)

notebooks: venv
	$(PY) -m dplpaper.reproduce --mode $(MODE) --no-book --jobs $(JOBS)

book: venv
	$(PY) -m dplpaper.reproduce --book-only

# the notebooks of each case (one scope per case: they share caches; see conftest.py) and the unit
# tests in $(JOBS) workers; the results page last, alone: it reads the claims the other notebooks wrote
test: venv
	$(PY) -m pytest -n $(JOBS) --dist loadgroup notebooks tests --ignore=notebooks/90_paper_vs_package.ipynb --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider
	$(PY) -m pytest notebooks/90_paper_vs_package.ipynb --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

test-unit: venv
	$(PY) -m pytest -n $(JOBS) tests -p no:cacheprovider

test-notebooks: venv
	$(PY) -m pytest -n $(JOBS) --dist loadgroup notebooks --ignore=notebooks/90_paper_vs_package.ipynb --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider
	$(PY) -m pytest notebooks/90_paper_vs_package.ipynb --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

bench: venv
	$(PY) -m benchmarks.run_all

# After a deliberate change of results: re-execute the notebooks (quick mode) with papermill, copy
# the executed notebooks back over notebooks/ and rewrite the key results they check
# (notebooks/key_results/*.json, written by dplpaper.keyresults when DPLPAPER_UPDATE_KEY_RESULTS=1).
# Key results are committed from one thread on the pinned floating-point path above (the one CI
# uses); `python -m dplpaper.keyresults audit DIR` compares a run on another path (another CPU, or
# these variables unset) with them, shift against tolerance (tests/test_thread_independence.py
# covers one vs two threads).
# ONLY="14 90": only the notebooks whose names contain one of these (the results page last)
refresh-outputs: venv
	DPLPAPER_UPDATE_KEY_RESULTS=1 OMP_NUM_THREADS=1 $(PY) -m dplpaper.reproduce --mode quick --no-book --refresh-outputs --jobs $(JOBS) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf book/_build book/executed results .pytest_cache
