# tidtam — two commands on a fresh machine:  make run  ·  make test
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
APT_PACKAGES := chromium poppler-utils fonts-thai-tlwg
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: help run test lint fake-line system-deps services env clean bench screenshots

help:
	@echo "make run   — create the environment, migrate, load Sa Kaeo + its two FY 2567 letters (demo), start everything"
	@echo "             (with the LINE stand-in: LINE messages show at the URL printed on start-up)"
	@echo "make test  — install what the tests need and run them all (SQLite and PostgreSQL)"
	@echo "make fake-line [PORT=8099] — only the LINE stand-in (point TIDTAM_LINE_API_BASE at it)"
	@echo "make screenshots — start the demo on free ports and retake the README's pictures (docs/img/)"
	@echo "make bench — install the peers (Apprise, SpiffWorkflow, aiohttp) and run the five benchmarks in bench/"

# uv is bootstrapped with pip into a private folder when the machine has none.
.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet uv

env: $(VENV)/.synced

# --compile-bytecode: uv installs no .pyc by default, and with PYTHONDONTWRITEBYTECODE set (as on
# these machines) every process would compile Prefect, SQLAlchemy … from source on each start
# (about 2 s more per process: the tests start hundreds of them).
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11 --compile-bytecode
	@touch $@

# Debian packages the tests need (Chromium for the browser test, pdftotext, Thai fonts).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# PostgreSQL is started by this kind of machine; start it if it is installed but stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  command -v pg_ctlcluster >/dev/null && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; } || true

# The demo's clock starts on Tuesday 6 Aug 2567, 09:00 Bangkok time (three working days before
# the report is due) and runs on from there; override with DEMO_NOW=… (ISO-8601 with offset).
# The directive is launched (and the demo accounts made) on the letter's day, 12 Jul 2567; the
# second letter (directives/fy2567-sakaeo-outstanding-centers.yaml) on its day, 26 Jul 2567.
DEMO_NOW ?= 2024-08-06T09:00:00+07:00
DEMO_LAUNCH ?= 2024-07-12T10:00:00+07:00
run: env
	TIDTAM_DEMO=1 $(BIN)/tidtam init --demo --follow-up --exist-ok --now $(DEMO_LAUNCH)
	TIDTAM_DEMO=1 TIDTAM_DEMO_NOW=$(DEMO_NOW) $(BIN)/tidtam serve

# The stand-in LINE Messaging API on its own; `make run` starts one itself in demo mode.
PORT ?= 8099
fake-line: env
	$(BIN)/tidtam fake-line --port $(PORT)

# ruff, then the layer map (pyproject.toml [tool.importlinter], docs/architecture.md): an import
# against the layers fails here.
lint: env
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: env system-deps services lint
	$(BIN)/python -m compileall -q -j 0 domain models tidtam web flows notifications >/dev/null
	$(BIN)/python -m pytest -q -ra --durations=25

# The README's pictures (docs/img/), taken by headless Chromium from the demo as `make run` starts
# it, on free ports and in a var folder of its own; not part of `make test` (scripts/screenshots.py).
screenshots: env system-deps
	DEMO_NOW=$(DEMO_NOW) DEMO_LAUNCH=$(DEMO_LAUNCH) $(BIN)/python scripts/screenshots.py

# Benchmarks against the peers a user would pick instead (bench/README.md); not pass/fail, not
# part of `make test`. The peers live in the `bench` dependency group; the next plain
# `uv sync --frozen` (make env/test) removes them again, which is fine.
bench: | $(UV)
	$(UV) sync --frozen --python 3.11 --group bench --compile-bytecode
	$(BIN)/python -m bench.p1_sweep
	$(BIN)/python -m bench.p1_flow
	$(BIN)/python -m bench.p2_mark_done
	$(BIN)/python -m bench.p3_line_pushes
	$(BIN)/python -m bench.p4_board
	$(BIN)/python -m bench.p5_serve

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache
