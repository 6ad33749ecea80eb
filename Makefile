# Two entry points: `make demo` (set up, then run the demo) and `make test` (set up, then run the tests).
# Setup is idempotent: a virtual environment in .venv, torch from TORCH_SPEC (the CPU wheel by default;
# override it for GPU builds, e.g. `make test TORCH_SPEC=torch`), then noisyseg in editable mode with
# its compiled ops (rebuilt when csrc/ changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.noisyseg-installed
SOURCES := setup.py pyproject.toml $(shell find csrc -name '*.cpp' -o -name '*.cu' -o -name '*.h' 2>/dev/null)

.PHONY: demo test bench-ops clean

demo: $(STAMP)
	$(BIN)/noisyseg demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench-ops: $(STAMP)
	$(BIN)/python bench/ops.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" ninja pybind11 "setuptools>=68" wheel
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[dev,backbones]'
	touch $@

clean:
	rm -rf build $(VENV) noisyseg/_C*.so *.egg-info
