# Two commands do everything on a fresh machine:
#   make run    — the service on the embedded default (SQLite, in-process broker, files)
#   make test   — the whole test suite (needs PostgreSQL and Redis, see README)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test chaos lint lock install bench bench-smtp bench-scheduler bench-ingest bench-memory bench-debtor bench-chains bench-letter bench-import bench-db-ceiling bench-scale profile clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Pin what is installed now into constraints.txt (after a change of dependencies).
lock: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --all --exclude-editable | grep -v '^setuptools=='; } > constraints.new
	mv constraints.new constraints.txt

install: $(STAMP)

run: $(STAMP)
	$(BIN)/relance run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy handlers adapters config intake worker scheduler relance
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Crash and outage tests (kill -9, Redis/PostgreSQL restarts, SMTP outage) on throwaway
# servers; excluded from `make test` by pyproject's addopts. See docs/reliability.md.
chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos -v --durations=0 $(PYTEST_ARGS) tests/chaos

# Throughput on the system PostgreSQL and Redis: no-op Dramatiq ceiling vs. end-to-end
# reminders to a loopback SMTP sink. See docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m bench.run

# PostgreSQL alone on reminder-shaped transactions (pgbench, 1 then 50 per transaction).
bench-db-ceiling: $(STAMP)
	$(BIN)/python -m bench.db_ceiling

# The scheduler with 1 000 000 open invoices: tick time, emission vs raw enqueue, memory.
bench-scheduler: $(STAMP)
	$(BIN)/python -m bench.scheduler

# `relance ingest` of 1 000 000 events into PostgreSQL: events/s and resident memory.
bench-ingest: $(STAMP)
	$(BIN)/python -m bench.ingest

# One reminder's CPU time, SQL statements and pyinstrument profile, in one thread.
profile: $(STAMP)
	$(BIN)/python -m bench.profile

# Reminders end to end with 1, 2 and 4 worker processes (BENCH_SCALE_PROCESSES).
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale

# The SMTP transport alone: messages in turn over one connection, pipelined or not.
bench-smtp: $(STAMP)
	$(BIN)/python -m bench.smtp

# One debtor with 20 000 open invoices: one message end to end, the worker's peak memory.
bench-debtor: $(STAMP)
	$(BIN)/python -m bench.debtor

# Evidence-appending commits/s with 1, 2, 4, 8 processes: one chain vs one per creditor.
bench-chains: $(STAMP)
	$(BIN)/python -m bench.chains

# The CPU time of rendering one PDF letter, alone and on worker threads.
bench-letter: $(STAMP)
	$(BIN)/python -m bench.letter

# Worker resident memory over 100 000 reminders end to end.
bench-memory: $(STAMP)
	$(BIN)/python -m bench.memory

# relance import of 100 000 UBL e-invoices into PostgreSQL: invoices/s and resident memory.
bench-import: $(STAMP)
	$(BIN)/python -m bench.import_einvoices

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy handlers adapters config intake worker scheduler relance

clean:
	rm -rf $(VENV) var .pytest_cache
