# blockproof: the newcomer path. `make demo` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench reliability venv clean help system

help:
	@echo "make demo   - install into $(VENV) and run the offline Pakistan-2024 lab demo"
	@echo "make test   - install everything the tests need, then run the default test suite"
	@echo "make lint   - ruff and mypy (strict) on src/"
	@echo "make bench  - long benchmarks (writes docs/benchmarks.md)"
	@echo "make reliability - hostile servers, fuzzing, faults, abuse, load, fast and long parts (writes docs/reliability.md)"

$(PY):
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/blockproof demo

# System packages the tests need, from Debian: a Java runtime for the Spark engine
# (default-jre-headless), Chromium to print evidence reports as PDF, and poppler-utils
# (pdftotext) to read them back. Installed only when missing; `apt-get update` once.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system:
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pdftotext >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

test: $(STAMP) system
	$(PY) -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

bench: $(STAMP)
	$(PY) -m pytest -q -m bench -p no:cacheprovider tests/bench

# Every reliability test, the long ones included, in one run; its figures become docs/reliability.md.
reliability: $(STAMP) system
	rm -rf test-artifacts/reliability
	$(PY) -m pytest -q -p no:cacheprovider -m reliability tests
	$(PY) tests/reliability/render.py --write docs/reliability.md

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
