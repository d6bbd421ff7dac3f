# The two commands of the README: `make demo` and `make test`. Each sets up what it needs first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# python3.12 may be a pyenv shim that is not active here; fall back to pyenv's own install.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: demo test bench setup

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: python3.12 not found (set PYTHON=/path/to/python3.12)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,nidaq,plot,bench]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/hwlink demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m benchmarks
