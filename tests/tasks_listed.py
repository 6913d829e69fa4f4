"""Tasks for the auto_register test: only the ones listed in ``workers.tasks`` may run."""

from __future__ import annotations

from taskqueue import task


@task(name="listed.kept")
def kept(x: int) -> int:
    return x + 1


@task(name="listed.dropped")
def dropped(x: int) -> int:
    return x - 1


def plain(x: int) -> int:
    return x * 10
