# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export FO_ASSETS_HOME ?= $(CURDIR)/.fo_assets

.PHONY: demo test dev bench soak install instance clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# dagster reads dagster.yaml only from DAGSTER_HOME: point that folder at the project's file.
instance: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	ln -sf $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/fo-assets instance init

demo: instance
	$(BIN)/fo-assets demo

test: instance
	$(BIN)/python -m pytest $(PYTEST_ARGS)

dev: instance
	$(BIN)/fo-assets dev

bench: instance
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench
	$(BIN)/python -m bench.dagster_path

soak: instance
	$(BIN)/python -m soak

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) .fo_assets
