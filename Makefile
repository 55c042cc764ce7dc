# Every target builds what it needs from nothing: a fresh clone runs `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint format bench faults serve sandbox clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/switchboard demo

# The PostgreSQL tests need a server: tests/pgserver.py starts a throwaway one from Debian's postgresql
# package in a temp dir (apt-get installs it first when run as root and it is missing), exports
# SWITCHBOARD_TEST_PG for the run, and stops it after. Without one the run says why and those tests skip.
# Two workers (pytest-xdist): every test has its own ports, files and database, and the suite takes half as long.
test: $(STAMP)
	$(BIN)/python -m tests.pgserver run -- $(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test

faults: $(STAMP)
	$(BIN)/python -m bench.faults

# wrk generates the load; as root it is installed here, otherwise the bench says how and skips its figures.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; } \
	      || echo "bench: apt-get could not install wrk — its figures are skipped"; \
	  else \
	    echo "bench: wrk is missing; install it with 'sudo apt-get install wrk' (Debian/Ubuntu) — its figures are skipped"; \
	  fi; }
	$(BIN)/python -m bench

serve: $(STAMP)
	$(BIN)/switchboard serve

sandbox: $(STAMP)
	$(BIN)/switchboard sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
