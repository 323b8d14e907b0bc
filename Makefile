# Dabiao — everything starts from a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lint test demo diagram clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check states workflow notifications deadlines api tests bench
	$(BIN)/ruff format --check states workflow notifications deadlines api tests bench
	$(BIN)/mypy states workflow

test: lint
	$(BIN)/pytest -q

diagram: $(STAMP)
	$(BIN)/dabiao diagram

demo: $(STAMP)
	$(BIN)/dabiao demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dabiao.db dabiao.db-wal dabiao.db-shm
