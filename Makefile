# The README's two commands. PIP pins torch to the local CPU build (no CUDA wheels on CPU machines).
PYTHON ?= python3
PIP = $(PYTHON) -m pip install -q torch==2.13.0

.PHONY: install demo test lint bench

install:
	$(PIP) -e .

demo: install
	inrcodec demo

test:
	$(PIP) -e ".[test,bench]"
	$(PYTHON) -m ruff check inrcodec tests benchmarks
	$(PYTHON) -m pytest -q

bench:
	$(PIP) -e ".[bench]"
	$(PYTHON) -m benchmarks.kodak_rd
