# Everything runs from a local virtualenv so a new machine needs only Python 3.11 (+ make).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: install run test bench clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# the package itself, editable: `resnet-lab` and `python -m resnet_viz` work from any folder
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) --server.headless true

test: install
	$(BIN)/lint-imports --no-cache   # the layers (.importlinter); tests/test_architecture.py: cycles, privates
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_overhead.py
	$(BIN)/python bench/bench_shatter.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
