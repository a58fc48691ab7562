# Two commands on a fresh machine: `make demo` and `make test`.
#
# Both install from the lock: uv.lock (uv's universal lock: every platform, every Python that
# pyproject allows) exported to requirements.lock (pip's format, with sha256 hashes), so a
# fresh clone gets exactly the versions CI tested. `make lock` refreshes both.
#
# torch and its CUDA runtime are the one part outside requirements.lock: uv.lock pins
# torch==2.13.0 with PyPI's hashes, but the build differs by machine (PyPI's CUDA build on
# Linux, a CPU build where one lies in pip's find-links), so it is installed by version, after
# everything else, and its own exact pins choose the CUDA packages.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
# torch, triton and the CUDA runtime: read from uv.lock, so a new torch brings its own list.
TORCH_RUNTIME = $(shell sed -n 's/^name = "\(torch\|triton\|cuda-[a-z-]*\|nvidia-[a-z0-9-]*\)"$$/\1/p' uv.lock)
LOCK_HEADER := \# Exported from uv.lock by 'make lock'; do not edit. Install: pip install --require-hashes --no-deps -r requirements.lock
EXPORT = uv export --frozen --quiet --no-header --format requirements.txt --extra test --group onnx-source --group detector-weights --group sample-photos \
	--no-emit-project $(addprefix --no-emit-package ,$(TORCH_RUNTIME))

.PHONY: demo test lint lock relock lock-export lock-check bench clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "photoproof needs Python 3.11 or newer; $(PYTHON) is " + sys.version.split()[0] + ". Install Python 3.11+ (python.org, brew install python@3.12, winget install Python.Python.3.12) and run: make demo PYTHON=python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes --no-deps -r requirements.lock
	$(PIP) install --quiet --no-warn-conflicts $(TORCH)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/photoproof demo

# The lock matches pyproject (uv's check mode) and requirements.lock matches uv.lock.
lock-check: $(STAMP)
	$(VENV)/bin/uv lock --check --quiet || { echo "uv.lock does not match pyproject.toml: run 'make lock'"; exit 1; }
	$(VENV)/bin/$(EXPORT) > $(VENV)/requirements.check
	tail -n +2 requirements.lock | cmp -s - $(VENV)/requirements.check \
		|| { echo "requirements.lock does not match uv.lock: run 'make lock'"; exit 1; }

# ruff's rules (pyproject [tool.ruff.lint]: McCabe complexity <= 15, lines <= 120), then its formatter.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The suite runs a file per worker, a worker per core up to 4 (pytest-xdist; each worker loads its own models,
# 1-2 GB): a module's fixtures are built once. PYTEST_ARGS adds options, e.g. make test PYTEST_ARGS='-n 0 -x'
# for one process that stops at the first failure.
PYTEST_ARGS ?=
test: lock-check lint
	$(PY) -m mypy
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile $(PYTEST_ARGS)

# Re-resolve uv.lock to the newest versions that fit pyproject, then export requirements.lock.
# After editing pyproject by hand, `make relock` keeps every version that still fits.
# Both need uv on the PATH or in .venv (pip install uv).
UV_PATH = PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
lock:
	$(UV_PATH) uv lock --upgrade
	$(MAKE) lock-export

relock:
	$(UV_PATH) uv lock
	$(MAKE) lock-export

lock-export:
	{ echo "$(LOCK_HEADER)"; $(UV_PATH) $(EXPORT); } > requirements.lock

bench: $(STAMP)
	$(PY) bench/craft.py
	$(PY) bench/capture.py
	$(PY) bench/printouts.py
	$(PY) bench/simulate.py
	$(PY) bench/report.py
	$(PY) bench/bookkeeping.py
	$(PY) bench/phone.py
	$(PY) -m bench.faces

clean:
	rm -rf $(VENV) demo-batch
