# Two commands for a new user: `make demo` and `make test`. Both build the local virtual environment first.
# The exact torch pin lives here (pyproject.toml declares the supported range); `make test-oldest` runs the suite
# on the oldest torch the range claims.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.14.1 torchvision==0.29.1
OLDEST := .venv-oldest
OLDEST_TORCH := torch===2.11.0 torchvision===0.26.0

.PHONY: demo test test-oldest venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(OLDEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet --upgrade pip
	$(OLDEST)/bin/pip install --quiet '$(firstword $(OLDEST_TORCH))' '$(lastword $(OLDEST_TORCH))'
	$(OLDEST)/bin/pip install --quiet -e '.[dev]'
	touch $(OLDEST)/.installed

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/bench demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) $(OLDEST)
