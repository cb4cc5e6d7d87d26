# blockproof: the newcomer path. `make demo` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck bench reliability ooni-qa venv clean help system

help:
	@echo "make demo   - install into $(VENV) and run the offline Pakistan-2024 lab demo"
	@echo "make test   - install everything the tests need, then run the default test suite"
	@echo "make check  - the fast tier for the edit-test loop (about a minute): lint, unit and property tests"
	@echo "make lint   - ruff, the import rules (lint-imports) and mypy (strict) on src/"
	@echo "make bench  - long benchmarks and the detection scorecard (writes docs/benchmarks.md, docs/detection.md)"
	@echo "make ooni-qa - every case of OONI's Web Connectivity QA catalogue in the lab, the long ones included"
	@echo "make reliability - hostile servers, fuzzing, faults, abuse, load, fast and long parts (writes docs/reliability.md)"

$(PY):
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }

# OONI's Python loader, to check that OONI's tools read our measurements
# (tests/ooni_tools.py); its own pins (old click, cryptography) would clash with ours,
# so it comes without them: the dev extra lists what its loader imports.
OONIDATA := oonidata==0.3.0

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps '$(OONIDATA)'
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
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

test: $(STAMP) system
	$(PY) -m pytest -q

# The fast tier for the edit-test loop (about a minute and a half on 2 cores): lint and the
# import rules, the unit and property tests (codec, classifier, verdicts, detection, ...),
# then a few lab scenarios end to end. No Spark, no browser, no SIGKILL loop, nothing long.
# `make test` runs everything, as CI does.
FAST := not lab and not kernel and not spark and not browser and not bench and not internet and not long and not reliability
LAB_SMOKE := pakistan-2024-x or dns-inject or tcp-blackhole or tls-reset-first-segment or http-blockpage or no-censorship
check: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(PY) -m pytest -q -x -p no:cacheprovider -m '$(FAST)' tests/unit tests/property
	$(PY) -m pytest -q -x -p no:cacheprovider -m lab -k '$(LAB_SMOKE)' \
	  tests/integration/test_lab_scenarios.py::test_shipped_scenario_meets_its_expectations

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(PY) -m pytest -q -m bench -p no:cacheprovider tests/bench

# Every reliability test, the long ones included, in one run; its figures become docs/reliability.md.
reliability: $(STAMP) system
	rm -rf test-artifacts/reliability
	$(PY) -m pytest -q -p no:cacheprovider -m reliability tests
	$(PY) tests/reliability/render.py --write docs/reliability.md

# OONI's QA catalogue (docs/lab.md): the default suite runs all but the long cases.
ooni-qa: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m 'lab or long' tests/integration/test_ooni_qa.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
