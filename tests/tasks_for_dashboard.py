"""Tasks the dashboard test's workers import (``--import tests.tasks_for_dashboard``)."""

from __future__ import annotations

import os
import time

from taskqueue import task


@task(name="d.work", max_retries=0)
def work(seconds: float = 0.0, i: int = 0) -> int:
    time.sleep(seconds)
    return i


@task(name="d.gated", max_retries=0)
def gated(gate: str) -> str:
    """Fails while the file ``gate`` exists: dead-lettered first, runs once the gate is gone."""
    if os.path.exists(gate):
        raise RuntimeError(f"gate {os.path.basename(gate)} is closed")
    return "passed"
