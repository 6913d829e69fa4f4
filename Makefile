# Everything a developer or CI runs. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' taskqueue/__init__.py)

.PHONY: screenshot demo test test-fast test-embedded lint format docs docs-check man man-check bench clean \
	venv-reset

# The venv is rebuilt when its interpreter no longer runs (copied from another machine, its
# Python uninstalled), and when PYTHON is given explicitly and names another interpreter than
# the one the venv was made from. A half-built venv has no stamp, so the install step reruns.
PYID = import sys; print(sys.version.split()[0], sys.base_prefix)
VENV_ID := $(shell $(PY) -c '$(PYID)' 2>/dev/null)
ifeq ($(VENV_ID),)
VENV_STALE := $(if $(wildcard $(VENV)),interpreter does not run)
else ifneq ($(filter command line environment,$(origin PYTHON)),)
ifneq ($(VENV_ID),$(shell $(PYTHON) -c '$(PYID)' 2>/dev/null))
VENV_STALE := made by another Python than $(PYTHON)
endif
endif
ifneq ($(VENV_STALE),)
$(STAMP): venv-reset
endif

venv-reset:
	@echo "$(VENV): $(VENV_STALE); recreating it"
	rm -rf $(VENV)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,embedded,yaml,browser,web]'
	touch $(STAMP)

## demo: a supervisor working 1,000 real jobs (embedded Redis unless REDIS_URL is set)
demo: $(STAMP)
	$(PY) examples/demo.py

## screenshot: docs/dashboard.png, taken by the dashboard's browser test (Debian's chromium driving
## the page of a real `task-worker web` while real workers run real jobs)
screenshot: $(STAMP)
	TASKQUEUE_REQUIRE_BROWSER=1 TASKQUEUE_SCREENSHOT=docs/dashboard.png $(PY) -m pytest -q -p no:cacheprovider \
	  tests/test_dashboard.py -k end_to_end

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

## man: regenerate man/task-worker.1 and man/tqctl.1 from the argparse parsers. The date line is
## pinned (MAN_DATE) so a rerun with nothing changed leaves the tree clean; man-check is CI's guard.
MAN_DATE ?= 2026-11-28
MAN_DIR ?= man
MANPAGE = SOURCE_DATE_EPOCH=$$(date -u -d $(MAN_DATE) +%s) $(VENV)/bin/argparse-manpage \
	--project-name taskqueue --version $(VERSION) --manual-title "taskqueue manual"
man: $(STAMP)
	$(MANPAGE) --module taskqueue.cli.tqctl --function build_parser --prog tqctl \
	  --description "control and inspect taskqueue through Redis" --output $(MAN_DIR)/tqctl.1
	$(MANPAGE) --module taskqueue.cli.worker --function build_parser --prog task-worker \
	  --description "pre-fork supervisor of taskqueue worker processes" --output $(MAN_DIR)/task-worker.1

man-check: $(STAMP)
	rm -rf $(VENV)/man-check && mkdir -p $(VENV)/man-check
	$(MAKE) --no-print-directory man MAN_DIR=$(VENV)/man-check >/dev/null
	diff -u man/tqctl.1 $(VENV)/man-check/tqctl.1
	diff -u man/task-worker.1 $(VENV)/man-check/task-worker.1
	@echo "man pages are up to date"
