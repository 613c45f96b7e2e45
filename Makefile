# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint unit venv migrate clean reliability bench

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip>=24' 'setuptools<81' wheel
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $(STAMP)

venv: $(STAMP)

## start the four services in the foreground (Ctrl-C stops them)
run: venv
	$(PY) -m services.common.launch.supervisor

## lint and format (ruff) and types (mypy) as configured in pyproject.toml; `make test` runs it first
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## the whole suite: lint and types, then unit, integration (real RabbitMQ and PostgreSQL), reliability
test: lint
	bash scripts/ensure-backing-services
	$(PY) -m pytest $(PYTEST_ARGS)

## the reliability suite: faults against real processes, one line per scenario (docs/reliability.md)
reliability: venv
	bash scripts/ensure-backing-services
	$(PY) -m reliability $(RELIABILITY_ARGS)

## unit tests only (no broker, no database)
unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

## benchmarks on the real RabbitMQ and PostgreSQL: anchors, then P1-P6; a table and bench-results.json
bench: venv
	bash scripts/ensure-backing-services
	$(PY) -m benchmarks $(BENCH_ARGS)

migrate: venv
	for s in calls grants notifications reporting; do $(PY) -m services.common.launch.runner $$s --migrate-only; done

clean:
	rm -rf var .pytest_cache
