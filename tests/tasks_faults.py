"""Tasks of the failure-injection suite: the ledger's ready-made tasks plus ones that fail."""

from __future__ import annotations

from taskqueue import task
from taskqueue.testing import ledger_tasks  # noqa: F401 - registers ledger.noop, ledger.sleep, ...
from taskqueue.testing.ledger import recorded


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
