# Two commands on a fresh machine: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test unit bench install infra browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

infra: install            ## download and build Kafka and FerretDB into the cache (once)
	$(BIN)/python -m infra install

browser: install          ## the system's Chromium for the browser tests (Debian's package, installed when missing)
	$(BIN)/python -m infra browser

run: infra                ## run Kafka, FerretDB, the producer and consumers for clientA and clientB
	exec $(BIN)/python -m infra.local_stack

test: infra browser       ## every test: unit, integration, end to end and in a browser, on real servers
	$(BIN)/pytest

unit: install             ## the fast unit tests only
	$(BIN)/pytest tests/unit

bench: infra              ## throughput and latency figures of the running pipeline
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .run *.egg-info
