# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

# One pip command installs torch==2.13.0 together with everything that depends
# on it, so the resolver never reaches for a newer CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[test]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps onnx2torch==1.5.15
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/photoproof demo

test: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/craft.py
	$(PY) bench/capture.py
	$(PY) bench/printouts.py
	$(PY) bench/simulate.py
	$(PY) bench/report.py
	$(PY) bench/bookkeeping.py
	$(PY) bench/phone.py

clean:
	rm -rf $(VENV) demo-batch
