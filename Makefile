# Quellenchat — the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench bench-load ingest clean browser

install: $(STAMP)

# Reinstall whenever pyproject.toml changes. torch comes first: the pinned CPU build lies on this
# disk, while an unpinned torch pulled in by a dependency would download a CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	$(PY) -m quellenchat.gemma
	@touch $@

# The chat app reads the corpus in first when the store is missing or stale, then prints its URL.
run: install
	$(PY) chat_app.py

ingest: install
	$(PY) -m ingest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# The browser tests drive Debian's Chromium; a clean machine (CI) gets it here, once.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver; }

pytest: install browser
	$(PY) -m pytest

test: lint typecheck pytest

bench: install
	$(PY) bench/run.py

# Simulated users against the app on loopback (bounded); writes bench/results/load.md.
bench-load: install
	$(PY) bench/load_bench.py

clean:
	rm -rf $(VENV) data
