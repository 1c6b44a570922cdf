# make run   : create .venv, install, initialize ./jpr-data on first run, serve on 127.0.0.1:50051
# make test  : create .venv, install, run the whole suite
# make protos: regenerate the SDK's clients/python/jpr_client/api from protos/
# make fuzz  : install atheris, fuzz each normalizer and decoder FUZZ_SECONDS (30) s; crashes land in fuzz/regressions/

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DATA_DIR ?= jpr-data
FUZZ_SECONDS ?= 30

.PHONY: run test protos typecheck fuzz clean

# Both distributions from this repository: the registry pins the SDK (jpr-client) at its own version.
# INSTALL=editable (the default) installs them editable; INSTALL=wheels (the default under CI=true) builds the
# two wheels and installs those, so the whole suite runs on what a platform and an association install.
ifeq ($(CI),true)
INSTALL ?= wheels
else
INSTALL ?= editable
endif
WHEELS := $(VENV)/wheels
# The stamp holds the kind of install; asking for the other kind installs again.
ifneq ($(shell cat $(INSTALLED) 2>/dev/null),$(INSTALL))
.PHONY: $(INSTALLED)
endif

# Wheels are copies: any change to the packages' files builds and installs them again.
PACKAGED := $(if $(filter wheels,$(INSTALL)),$(shell find registry clients/python/jpr_client -type f ! -path '*/__pycache__/*'))

$(INSTALLED): pyproject.toml clients/python/pyproject.toml $(PACKAGED)
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "JPR needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(INSTALL),wheels)
	rm -rf $(WHEELS) build clients/python/build
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(WHEELS) ./clients/python .
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(WHEELS)/*.whl
	$(BIN)/python -m pip install --quiet "$$(ls $(WHEELS)/jpr-[0-9]*.whl)[dev]"
else
	$(BIN)/python -m pip install --quiet -e ./clients/python -e '.[dev]'
endif
	echo $(INSTALL) > $(INSTALLED)

run: $(INSTALLED)
	@test -e $(DATA_DIR)/registry.toml || $(BIN)/jpr init --data-dir $(DATA_DIR)
	$(BIN)/jpr serve --data-dir $(DATA_DIR)

# Two workers: most of the suite waits on servers, subprocesses and PostgreSQL, not on the CPU. The long tests
# come first (tests/conftest.py) and an idle worker takes tests queued for the busy one (worksteal).
# On the wheels, pytest appends the repository to sys.path instead of prepending it (tests/__init__.py says why).
test: $(INSTALLED)
	JPR_TEST_INSTALL=$(INSTALL) $(BIN)/python -m pytest -n 2 --dist worksteal $(if $(filter wheels,$(INSTALL)),--import-mode=append)

protos: $(INSTALLED)
	$(BIN)/python scripts/gen_protos.py

typecheck: $(INSTALLED)
	$(BIN)/mypy

# atheris is installed on demand, not with [dev]: it is a large wheel that `make test` does not need.
fuzz: $(INSTALLED)
	$(BIN)/python -m pip install --quiet 'atheris>=2.3'
	$(BIN)/python fuzz/run.py --all --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
