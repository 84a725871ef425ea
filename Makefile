# Two commands for a fresh clone: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/archdsl check specs/simple_cnn.spec
	$(BIN)/archdsl compare specs/simple_cnn.spec specs/mlp.spec --baseline mlp:128

test: $(STAMP)
	$(BIN)/python -m pytest

# The CPU benchmarks (about 20 minutes on 2 cores): bench/results/cpu-<date>.md and .json.
# The GPU part is bench/gpu.sh, on a machine with an NVIDIA GPU.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --suite cpu

clean:
	rm -rf $(VENV) build dist *.egg-info
