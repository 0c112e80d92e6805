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
	$(BIN)/lint-imports --no-cache --no-logo

bench: $(STAMP)
	$(BIN)/python bench/ack.py --load
	$(BIN)/python bench/windows.py
	$(BIN)/python bench/notes.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/detect.py --runs 3

# --no-emit-*: no machine-local index paths in the lock; --allow-unsafe: sqlite-utils depends on pip;
# --build-deps-for wheel: the project itself builds offline from hash-checked setuptools/wheel.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --build-deps-for wheel --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

.PHONY: docs lock-check
docs: $(STAMP)
	$(BIN)/python scripts/gen_config_docs.py > docs/config.md
	$(BIN)/python scripts/gen_permissions_table.py

# The container's lock: hashes present, versions match pyproject.toml, and it installs with --require-hashes
# into a clean virtualenv (from a copy of the tracked files, so the build leaves nothing in the tree).
lock-check: $(STAMP)
	$(BIN)/python scripts/check_lock.py
	rm -rf .lockcheck && mkdir -p .lockcheck/src
	git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C .lockcheck/src
	$(PY) -m venv .lockcheck/venv
	.lockcheck/venv/bin/pip install -q --require-hashes --no-deps -r requirements.lock
	.lockcheck/venv/bin/pip install -q --no-deps --no-build-isolation --no-index .lockcheck/src
	.lockcheck/venv/bin/pip check
	.lockcheck/venv/bin/release-bot --help > /dev/null
	rm -rf .lockcheck
