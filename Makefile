# Dabiao — everything starts from a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lint test test-reliability bench demo diagram clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# The benchmark suite at CI-friendly sizes; `make bench BENCH_ARGS=--full` for the full sizes,
# `BENCH_ARGS='--only engine,bulk'` for some. Results go to docs/BENCHMARKS.md.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check states workflow notifications deadlines api tests bench
	$(BIN)/ruff format --check states workflow notifications deadlines api tests bench
	$(BIN)/mypy states workflow notifications deadlines api

# PostgreSQL half of the suite: DABIAO_TEST_DATABASE_URL, or the local server when one answers.
PG_DEFAULT := postgresql+psycopg://postgres@127.0.0.1:5432/test

test: lint
	@if [ -z "$$DABIAO_TEST_DATABASE_URL" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		export DABIAO_TEST_DATABASE_URL=$(PG_DEFAULT); fi; \
	echo "PostgreSQL for tests: $${DABIAO_TEST_DATABASE_URL:-none (PostgreSQL tests will be skipped)}"; \
	$(BIN)/pytest -q

# Faults and hostile input (tests/reliability/, kept out of `make test`); writes docs/RELIABILITY.md.
test-reliability: $(STAMP)
	@if [ -z "$$DABIAO_TEST_DATABASE_URL" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		export DABIAO_TEST_DATABASE_URL=$(PG_DEFAULT); fi; \
	echo "PostgreSQL for tests: $${DABIAO_TEST_DATABASE_URL:-none (PostgreSQL tests will be skipped)}"; \
	$(BIN)/pytest -q tests/reliability

diagram: $(STAMP)
	$(BIN)/dabiao diagram

# `make demo DEMO_ARGS='--firms 500 --port 8001'`; Ctrl+C stops it (exit status 0).
demo: $(STAMP)
	$(BIN)/dabiao demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dabiao.db dabiao.db-wal dabiao.db-shm
