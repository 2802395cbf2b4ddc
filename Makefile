# MOD Dermatology isotretinoin bot. The two commands that matter:
#   make run    set everything up, then run the bot (Ctrl-C stops it)
#   make test   set everything up, then lint and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
SPACY_PIPELINE := var/spacy/en_isotretinoin_lookup/meta.json
export RASA_TELEMETRY_ENABLED ?= false
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test setup install kb train shell lint format validate test-core \
	bench handoffs clean

run: train
	$(PY) -m bot.serve

shell: train
	$(PY) -m bot.serve --shell

test: setup lint validate train
	$(PY) -m pytest
	$(MAKE) test-core

setup: install $(SPACY_PIPELINE) kb

install: $(INSTALLED)

# The venv is (re)built with Python 3.10 whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml
	@python310=$$(scripts/find-python310) || exit 1; \
	if ! $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then \
		echo "creating $(VENV) with $$python310"; rm -rf $(VENV); \
		"$$python310" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade "pip>=24,<26"
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

$(SPACY_PIPELINE): bot/spacy_pipeline.py $(INSTALLED)
	$(PY) -m bot.spacy_pipeline

kb: install
	$(PY) -m bot.knowledge load

train: setup
	$(PY) -m bot.model_cache train

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

validate: install
	$(PY) -m rasa data validate --fail-on-warnings

test-core: train
	$(PY) -m rasa test core --stories tests/stories \
		--model "$$($(PY) -m bot.model_cache path)" \
		--out results/core --fail-on-prediction-errors

bench: train
	$(PY) bench/nlu_accuracy.py
	$(PY) bench/safety.py

# Staff: the open handoffs (python -m bot.staff --help for show/claim/resolve).
handoffs: install
	$(PY) -m bot.staff handoffs --status open

clean:
	rm -rf $(VENV) var models results .pytest_cache .ruff_cache
