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

.PHONY: demo test bench bench-ops clean

demo: $(STAMP)
	$(BIN)/noisyseg demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench-ops: $(STAMP)
	$(BIN)/python bench/ops.py

# The op benchmarks against their real peers (torch_scatter, torch_geometric): the `peers` extra is
# built once (torch-scatter compiles for ~10 minutes; pip caches the wheel), then every op bench runs.
bench: $(VENV)/.noisyseg-peers
	$(BIN)/python bench/ops.py

$(VENV)/.noisyseg-peers: $(STAMP)
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[dev,backbones,peers]'
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" ninja pybind11 "setuptools>=68" wheel
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[dev,backbones]'
	touch $@

clean:
	rm -rf build $(VENV) noisyseg/_C*.so *.egg-info
