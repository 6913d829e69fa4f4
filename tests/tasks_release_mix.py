"""Tasks of tests/test_release_mix.py, imported by the current release and by the earlier releases
it runs beside (so only names that every one of them has): the ledger's ready-made tasks, and a
gate that holds its run until the test creates a file (a job in flight when a master stops)."""

from __future__ import annotations

import os
import time

from taskqueue import task
from taskqueue.testing import ledger_tasks  # noqa: F401 - registers ledger.noop, ledger.sleep, ...
from taskqueue.testing.ledger import recorded


@task(name="mix.gate")
@recorded
def gate(path: str, i: int = 0) -> int:
    """Runs until ``path`` exists (at most a minute), then returns ``i``."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {path} was never opened")
        time.sleep(0.01)
    return i
