# Two commands for a fresh machine: `make run` (set up, then the main job on the bundled
# annotations) and `make test` (set up, then the whole test suite, slow checks included).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast validate stats clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

validate: setup
	$(BIN)/quote-stance annotations build --check
	$(BIN)/quote-stance validate annotations/

stats: setup
	$(BIN)/quote-stance stats

run: validate stats

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
