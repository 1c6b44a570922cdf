# make run   : create .venv, install, initialize ./jpr-data on first run, serve on 127.0.0.1:50051
# make test  : create .venv, install, run the whole suite
# make protos: regenerate registry/api from protos/

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DATA_DIR ?= jpr-data

.PHONY: run test protos typecheck clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "JPR needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	@test -e $(DATA_DIR)/registry.toml || $(BIN)/jpr init --data-dir $(DATA_DIR)
	$(BIN)/jpr serve --data-dir $(DATA_DIR)

test: $(INSTALLED)
	$(BIN)/python -m pytest

protos: $(INSTALLED)
	$(BIN)/python scripts/gen_protos.py

typecheck: $(INSTALLED)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
