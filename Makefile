# The two commands of the README. Both do the whole set-up first (idempotent).
#   make demo   - demo network with live multicast (add ARGS=--cli to keep the Mininet CLI open)
#   make test   - the whole test suite (unit + integration with real OVS/Mininet)
SHELL := /bin/bash
VENV  ?= $(CURDIR)/.venv
PY    := $(VENV)/bin/python
ARGS  ?=

.PHONY: setup demo test unit integration bench bench-quick clean-venv

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) mininet/demo.py $(ARGS)

test: setup
	$(PY) -m pytest tests -p no:cacheprovider $(ARGS)

unit: setup
	$(PY) -m pytest tests/unit $(ARGS)

integration: setup
	$(PY) -m pytest tests/integration $(ARGS)

bench: setup
	$(VENV)/bin/python -m pip -q install --no-build-isolation -e '.[test,bench]'
	$(PY) bench/run.py --json artifacts/bench.json $(ARGS)

bench-quick: setup
	$(PY) bench/run.py --quick $(ARGS)

clean-venv:
	rm -rf $(VENV)
