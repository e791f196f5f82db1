# rxcrm — the two commands: `make run` and `make test` (see README).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000
DEMO_LEADS ?= 2000
DEMO_DEALS ?= 1000

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test install install-test system-deps bench bench-load migrate seed clean prod prod-stop

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

system-deps:
	@bash scripts/system-deps.sh

migrate: install
	$(PY) -m rxcrm.manage migrate

seed: install
	$(PY) -m rxcrm.seed --if-empty --leads $(DEMO_LEADS) --deals $(DEMO_DEALS)

## make run: set up, migrate, demo data on first start only, serve http://localhost:$(PORT)
run: install
	$(PY) -m rxcrm.manage migrate
	$(PY) -m rxcrm.seed --if-empty --leads $(DEMO_LEADS) --deals $(DEMO_DEALS)
	PORT=$(PORT) $(PY) -m rxcrm.manage accounts
	@echo "Starting rxcrm on http://localhost:$(PORT) (first build takes a minute) …"
	$(VENV)/bin/reflex run --env prod --frontend-port $(PORT) --backend-port $(PORT)

## make prod: the production topology — PostgreSQL + Redis (Debian's, loopback ports, data kept
## in .run/prod/), migrate, demo data on first start, $(WORKERS) workers (default: one per core)
## on http://localhost:$(PORT); Ctrl-C stops the app and both servers (scripts/prod.sh)
WORKERS ?=
prod: install system-deps
	@PORT=$(PORT) WORKERS=$(WORKERS) DEMO_LEADS=$(DEMO_LEADS) DEMO_DEALS=$(DEMO_DEALS) bash scripts/prod.sh run

## make prod-stop: stop what an interrupted `make prod` left running (data is kept)
prod-stop:
	@bash scripts/prod.sh stop

## make test: set up, start a throwaway PostgreSQL, run the whole suite, stop it
test: install-test system-deps
	@bash scripts/test.sh

## make bench-load: people open /deals and drag cards through the real app — one alone first
## (the base of the ratios), 10 and 50 at a person's pace (a drag every ~10 s), then 10 and
## 50 in a rush with no pause — on
## the single process (SQLite) and the production topology (PostgreSQL + Redis + a worker per
## core); loopback, bounded (≤ 20 min); JSON lines per measure, topology and user count
bench-load: install-test system-deps
	$(PY) bench/bench_load.py --budget 590
	@if [ -f .run/pg.env ]; then \
	  . ./.run/pg.env && $(PY) bench/bench_load.py --topology prod --pg-url "$$RXCRM_TEST_PG_URL" --budget 590; \
	else \
	  trap 'bash scripts/pg.sh stop' EXIT; \
	  url=$$(bash scripts/pg.sh start) && $(PY) bench/bench_load.py --topology prod --pg-url "$$url" --budget 590; \
	fi

## make bench: performance figures (JSON lines), not timed tests (surfaces; each page's per-user
## state, its size and serialization time; the intake burst; the import of 100k leads); the intake
## burst and the import run on SQLite and on PostgreSQL (a throwaway server, stopped afterwards;
## a running one is reused)
bench: install-test
	$(PY) bench/bench_surfaces.py --sizes 1000,100000,1000000 --full-max 100000 --pg-url "$${RXCRM_TEST_PG_URL:-}"
	$(PY) bench/bench_state.py
	$(PY) bench/bench_rest.py
	@if [ -f .run/pg.env ]; then \
	  . ./.run/pg.env && $(PY) bench/bench_intake.py --pg-url "$$RXCRM_TEST_PG_URL" && \
	  $(PY) bench/bench_import.py --pg-url "$$RXCRM_TEST_PG_URL"; \
	else \
	  trap 'bash scripts/pg.sh stop' EXIT; \
	  url=$$(bash scripts/pg.sh start) || { echo "PostgreSQL did not start: intake and import on SQLite only" >&2; url=""; }; \
	  $(PY) bench/bench_intake.py --pg-url "$$url" && $(PY) bench/bench_import.py --pg-url "$$url"; \
	fi

clean:
	rm -rf .web .states rxcrm.db rxcrm.db-wal rxcrm.db-shm
