# The two commands of the README: `make demo` and `make test`. Each sets up what it needs first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# python3.12 may be a pyenv shim that is not active here; fall back to pyenv's own install.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: demo test bench setup firmware simavr-packages mutation

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: python3.12 not found (set PYTHON=/path/to/python3.12)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,nidaq,plot,bench,lsl,nwb]'
	touch $@ $(VENV)/.installed-demo

# The demo needs the package alone (no test, nidaq, plot or bench extras): seconds, not minutes.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed-demo
	$(BIN)/hwlink demo

# The runtime, drivers, EDL and CLI tests again with every portable fallback of hwlink.platform forced (the paths
# Windows and macOS take: loopback-TCP worker channel, socket waker, stdin orphan guard, perf_counter clock, ...).
PORTABLE_TESTS := tests/test_platform.py tests/test_architecture.py tests/test_runtime*.py tests/test_drivers.py \
	tests/test_sim.py tests/test_firmata_driver.py tests/test_firmata_cli.py tests/test_nidaq.py tests/test_edl*.py \
	tests/test_cli.py tests/test_record.py

test: setup firmware
	$(BIN)/python -m pytest -q
	HWLINK_PORTABLE=1 $(BIN)/python -m pytest -q $(PORTABLE_TESTS)

bench: setup
	$(BIN)/python -m benchmarks

# Genuine StandardFirmata on an emulated Uno (tests/test_firmata_simavr.py): Debian's simavr, the prebuilt Uno
# image from the npm package avrgirl-arduino@5.0.1 (fetched, never committed) and our UART/pin bridge.
FIRMATA_HEX := .cache/firmata/package/junk/hex/uno/StandardFirmata.cpp.hex
UNO_BRIDGE := .cache/simavr/uno_bridge

firmware: $(FIRMATA_HEX) $(UNO_BRIDGE)

simavr-packages:
	@dpkg -s simavr libsimavr-dev >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y simavr libsimavr-dev; }

$(FIRMATA_HEX):
	mkdir -p .cache/firmata
	cd .cache/firmata && npm pack --silent avrgirl-arduino@5.0.1 >/dev/null && \
		tar xzmf avrgirl-arduino-5.0.1.tgz package/junk/hex/uno/StandardFirmata.cpp.hex

$(UNO_BRIDGE): tools/simavr-bridge/uno_bridge.c | simavr-packages
	mkdir -p $(dir $@)
	gcc -O2 -Wall -Wextra -I/usr/include/simavr -o $@ $< \
		-lsimavr -lpthread -lutil

# Mutation testing (QUALITY.md): mutmut on each core module against its focused tests, one module at a time, at low
# priority. Slow, so not part of `make test` or CI. `make mutation MODULES="lines units"` runs a selection.
MODULES ?=
$(VENV)/.installed-dev: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test,nidaq,plot,bench,dev]'
	touch $@

mutation: $(VENV)/.installed-dev
	nice -n 10 $(BIN)/python tools/mutation.py $(MODULES)
