"""Tasks and a code-declared schedule for the periodic master tests
(``--import tests.tasks_periodic``)."""

from __future__ import annotations

from datetime import timedelta

from taskqueue import periodic, task


@periodic(every=timedelta(seconds=1), name="code.tick")
@task(name="p.tick", max_retries=0)
def tick(n: int = 0) -> int:
    return n


@task(name="p.report", max_retries=0)
def report(kind: str = "daily") -> str:
    return kind
