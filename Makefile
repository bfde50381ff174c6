# Two commands on a fresh machine: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock

.PHONY: run test unit bench soak install infra browser clean

# $(LOCK) pins every package of the project and its tests, with their hashes, and setuptools
# to build it: pip installs nothing else. Its header is the command that makes it again after
# a change to pyproject.toml; add --upgrade to that command to move to newer versions.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check >&2; \
	  echo "$(LOCK) lacks what pyproject.toml asks for: make it again with the command in its header" >&2; exit 1; }
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

soak: infra               ## make run's stack under steady load and live streams for SOAK_MINUTES (30); fails on growth or a stall
	$(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) .run *.egg-info
