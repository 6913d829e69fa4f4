"""Tasks of the failure-injection suite: the ledger's ready-made tasks plus ones that fail, and
recorded twins of the master tests' tasks (a pid, a memory leak, a runaway sync call)."""

from __future__ import annotations

import asyncio
import os

from taskqueue import task
from taskqueue.testing import ledger_tasks  # noqa: F401 - registers ledger.noop, ledger.sleep, ...
from taskqueue.testing.ledger import recorded
from tests import tasks_for_master


class Flaky(Exception):
    """Raised by ``faults.flaky`` on every attempt."""


@task(name="faults.flaky", max_retries=3, retry_backoff=1.0, retry_backoff_max=60.0)
@recorded
def flaky(i: int = 0) -> None:
    """Fails every time: its retries follow the backoff, then it is dead-lettered."""
    raise Flaky(f"attempt failed ({i})")


@task(name="faults.flaky_slow", max_retries=2, retry_backoff=4.0, retry_backoff_max=60.0)
@recorded
def flaky_slow(i: int = 0) -> None:
    """Fails every time, with retries 2-4 s and 4-8 s apart: room to restart a master."""
    raise Flaky(f"attempt failed ({i})")


@task(name="faults.fail_fast", max_retries=1, retry_backoff=0.1, retry_backoff_max=0.5)
@recorded
def fail_fast(i: int = 0) -> None:
    """Fails every time, retried once a fraction of a second later: races with cancels."""
    raise Flaky(f"attempt failed ({i})")


@task(name="faults.pid")
@recorded
async def pid(seconds: float = 0.0) -> int:
    """The pid of the worker process that ran it."""
    await asyncio.sleep(seconds)
    return os.getpid()


@task(name="faults.leak", max_retries=0)
@recorded
def leak(mib: int) -> int:
    """``m.leak``, recorded: keeps ``mib`` MiB alive in its worker process."""
    return tasks_for_master.leak.func(mib)


@task(name="faults.spin", timeout=1, max_retries=1, retry_backoff=0.05, retry_backoff_max=0.1)
@recorded
def spin() -> None:
    """``m.spin``, recorded: ignores its soft time limit, so only the master's replacement of
    the worker process stops it; its run never finishes in the ledger."""
    tasks_for_master.spin.func()
