# graphstore-async — `make run` and `make test` set up everything a fresh machine lacks.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VAR    := var
HOST   ?= 127.0.0.1
PORT   ?= 8080
REDIS_PORT ?= 6379
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export GSA_DATA_DIR  ?= $(VAR)/data
export GSA_REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0

.PHONY: help install redis-server run redis-start test lint clean bench bench-quick wrk

help:
	@echo "make run    install what is missing, start Redis, the server and a demo repository"
	@echo "make test   install what is missing, then lint and run every test"
	@echo "make lint   ruff and mypy (strict) only"
	@echo "make bench  benchmarks against references measured in the same run (1M triples and growth to 10M, ~25 minutes)"
	@echo "make bench-quick  the same at small sizes"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Redis comes from Debian's packages when the machine has none.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

install: $(STAMP) redis-server

redis-start: redis-server
	@mkdir -p $(VAR)/redis
	@if redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1; then echo "Redis already answers on port $(REDIS_PORT)"; \
	else redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --dir $(CURDIR)/$(VAR)/redis --daemonize yes \
	  --pidfile $(CURDIR)/$(VAR)/redis/redis.pid --logfile $(CURDIR)/$(VAR)/redis/redis.log && \
	  echo "Redis started on 127.0.0.1:$(REDIS_PORT) (data in $(VAR)/redis)"; fi

run: install redis-start
	$(BIN)/graphstore-async repo create demo/demo --load fixtures/demo.trig
	@echo ""
	@echo "graphstore-async on http://$(HOST):$(PORT)   (Ctrl-C stops it; Redis keeps running: redis-cli -p $(REDIS_PORT) shutdown)"
	@echo "  repository:  curl http://$(HOST):$(PORT)/demo/demo"
	@echo "  query:       curl 'http://$(HOST):$(PORT)/demo/demo/sparql?query=SELECT%20*%20WHERE%20%7B%3Fs%20%3Fp%20%3Fo%7D%20LIMIT%2010'"
	@echo "  graph store: curl -H 'Accept: text/turtle' 'http://$(HOST):$(PORT)/demo/demo/service?default'"
	@echo "  readiness:   curl http://$(HOST):$(PORT)/ready"
	@echo ""
	$(BIN)/graphstore-async serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check graphstore_async tests bench
	$(BIN)/mypy
	$(BIN)/mypy bench

# `make test` also runs the benchmark at tiny sizes (tests/test_bench_smoke.py): it must run, not be fast.
test: install lint
	$(BIN)/pytest --cov=graphstore_async --cov-branch --cov-report=term:skip-covered

# wrk (Debian package) drives the load when it is installed; without it the benchmark uses its own Python
# load generator, which needs more of the CPU it shares with the servers under test.
wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null \
	  || echo "could not install wrk: the benchmark uses its Python load generator"; }

bench: install wrk
	$(BIN)/python -m bench

bench-quick: install wrk
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) $(VAR) .pytest_cache .mypy_cache .ruff_cache .coverage
