# agentkit: `make demo` runs the main job offline; `make test` runs the test suite. Both set up everything they need
# (a virtualenv with the Python deps; Docker engine and the sandbox image where the sandbox is used) and are idempotent.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: all install docker sandbox-image test test-fast lint-imports demo demo-synthesis bench lint clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

docker:
	@if [ -f scripts/ensure-docker.sh ]; then bash scripts/ensure-docker.sh; fi

sandbox-image: install docker
	@if [ -d tools/sandbox ] && [ -f tools/sandbox/__main__.py ]; then $(PY) -m agentkit.sandbox build && $(PY) -m agentkit.sandbox build --image data --no-check; fi

# The whole suite must prove everything: a test that cannot find Docker or torch fails here instead of skipping.
test: install sandbox-image lint-imports
	AGENTKIT_TESTS_STRICT=1 $(PY) -m pytest -q -ra

# The layer contracts of .importlinter over the installed namespace (DESIGN §0): a crossed layer fails `make test`.
lint-imports: install
	$(PY) scripts/lint_imports.py

# Needs neither Docker nor torch: the `docker` tests are deselected, and the `torch` tests skip where torch is
# missing (tests/conftest.py), each skip with its reason (-rs), so a machine without them still runs the rest.
test-fast: install
	$(PY) -m pytest -q -x -rs -m "not docker"

demo: install sandbox-image
	$(VENV)/bin/agentkit demo

# Environment synthesis with a scripted model, offline (docs/synthesis.md); prints how to run it with DeepSeek.
demo-synthesis: install sandbox-image
	$(PY) examples/synthesis_demo.py

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

lint: install
	$(VENV)/bin/ruff check agentkit model_backend tools envs
	$(VENV)/bin/mypy agentkit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
