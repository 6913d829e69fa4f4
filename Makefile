# Everything a developer or CI runs. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast test-embedded lint format docs docs-check man bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,embedded,yaml]'
	touch $(STAMP)

## demo: a supervisor working 1,000 real jobs (embedded Redis unless REDIS_URL is set)
demo: $(STAMP)
	$(PY) examples/demo.py

## test: the whole suite on the system redis-server (embedded one if none), then the smoke
## subset on the embedded Redis 6.2, so both keep working
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider
	TASKQUEUE_REDIS_SERVER=embedded $(PY) -m pytest -q -p no:cacheprovider -m smoke

## test-fast: skip the slow chaos tests
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## docs: regenerate docs/configuration.md from the settings schema
docs: $(STAMP)
	$(PY) -m taskqueue.config.docs

docs-check: $(STAMP)
	$(PY) -m taskqueue.config.docs --check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

## bench: taskqueue vs Celery, RQ, Dramatiq, arq, Huey and SAQ on a private redis-server
## (bench/README.md); installs the peers into bench/.venv-peers. BENCH_ARGS="--quick" etc.
bench:
	$(PYTHON) bench/run.py $(BENCH_ARGS)

## man: regenerate man/task-worker.1 and man/tqctl.1 from the argparse parsers
man: $(STAMP)
	$(VENV)/bin/argparse-manpage --module taskqueue.cli.tqctl --function build_parser --prog tqctl \
	  --project-name taskqueue --version 0.1.0 --manual-title "taskqueue manual" \
	  --description "control and inspect taskqueue through Redis" --output man/tqctl.1
	$(VENV)/bin/argparse-manpage --module taskqueue.cli.worker --function build_parser --prog task-worker \
	  --project-name taskqueue --version 0.1.0 --manual-title "taskqueue manual" \
	  --description "pre-fork supervisor of taskqueue worker processes" --output man/task-worker.1
