# Quellenchat — the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint typecheck pytest bench bench-load ingest clean browser

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

# Test files run on two workers (a file stays on one: its module fixtures start one app or store).
pytest: install browser
	$(PY) -m pytest -n 2 --dist loadfile

# Everything: lint, types, and every test with real models, servers and the browser (CI).
test: lint typecheck pytest

# The quick loop while working (a few minutes): pure logic and the ingest bookkeeping, with a fake
# embedder where embedding is not what is checked; no model, server or browser.
FAST := not model and not server and not browser
test-fast: install
	$(PY) -m pytest -n 2 --dist loadfile -m "$(FAST)"

bench: install
	$(PY) bench/run.py

# Simulated users against the app on loopback (bounded); writes bench/results/load.md.
bench-load: install
	$(PY) bench/load_bench.py

clean:
	rm -rf $(VENV) data
