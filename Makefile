# The README's two commands, on a fresh machine with nothing activated: they make and use their
# own virtual environment (.venv), so they also work where the system Python refuses global
# installs (PEP 668). torch is pinned to the local 2.13.0 CPU build (no CUDA wheels on CPU machines).
PYTHON ?= python3
VENV ?= .venv
PY = $(VENV)/bin/python
PIP = $(PY) -m pip install -q torch==2.13.0

.PHONY: install demo test lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	$(PIP) -e .

demo: install
	$(VENV)/bin/inrcodec demo --force  # demo-out/ is its own output: rerunning replaces it

test: $(PY)
	$(PIP) -e ".[test,bench]"
	$(PY) -m ruff check inrcodec tests benchmarks
	$(PY) -m pytest -q

bench: $(PY)
	$(PIP) -e ".[bench]"
	$(PY) -m benchmarks.kodak_rd
