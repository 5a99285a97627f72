# The quick start's two commands; both need only Python 3.11 (see README.md).
PYTHON ?= python3

.PHONY: run test setup lint bench

run:  ## set up and run the product: web on 127.0.0.1:8000 + task worker, SQLite, demo data
	$(PYTHON) scripts/dev.py run $(ARGS)

test:  ## set up and run the tests (SQLite by default, DATABASE_URL/REDIS_URL when set)
	$(PYTHON) scripts/dev.py test $(ARGS)

setup:
	$(PYTHON) scripts/dev.py setup

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: setup  ## every benchmark in bench/ at quick sizes; one table in bench/RESULTS.md (a few minutes)
	.venv/bin/python bench/run_all.py $(ARGS)
