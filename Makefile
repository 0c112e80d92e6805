# The README's commands. Every target creates the virtualenv itself, so a fresh clone needs nothing else.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench lock clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/release-bot console --demo

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check bot commands tests bench
	$(BIN)/ruff format --check bot commands tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ack.py
	$(BIN)/python bench/windows.py
	$(BIN)/python bench/notes.py
	$(BIN)/python bench/scale.py

lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

.PHONY: docs lock-check
docs: $(STAMP)
	$(BIN)/python scripts/gen_config_docs.py > docs/config.md

# The container's lock: hashes present, versions match pyproject.toml, and it installs with --require-hashes.
lock-check: $(STAMP)
	$(BIN)/python scripts/check_lock.py requirements.lock pyproject.toml
	rm -rf .lockcheck && $(PY) -m venv .lockcheck
	PIP_CONSTRAINT= .lockcheck/bin/pip install -q --require-hashes --no-deps -r requirements.lock
	.lockcheck/bin/pip check
	rm -rf .lockcheck
