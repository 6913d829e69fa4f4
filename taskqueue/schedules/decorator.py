"""``@periodic``: declare, above ``@task``, that a task runs on a schedule.

    @periodic(cron="*/5 * * * *", tz="Europe/Paris")
    @task(name="reports.refresh")
    def refresh(): ...

    @periodic(every=timedelta(seconds=30), args=(1,), misfire="skip")
    @task(name="heartbeat")
    def heartbeat(n): ...

The schedule is registered in ``taskqueue.schedules.schedules`` when the module is imported; a
master with ``--enable-scheduler`` that imports the module fires it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from ..serialization import encode_call
from ..task import Task, TaskFunction
from .model import Schedule, ScheduleRegistry, schedules
from .spec import make_spec

T = TypeVar("T")


def periodic(
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    tz: str | None = None,
    name: str | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    misfire: str = "run_once",
    registry: ScheduleRegistry = schedules,
) -> Any:
    """Run the decorated task at every slot of ``cron`` (in ``tz``, default UTC) or ``every``.

    ``name`` defaults to the task's name; ``args``/``kwargs`` are passed to each job; ``queue``
    defaults to the task's queue; ``misfire`` is ``run_once`` (after downtime, one catch-up job
    for all missed slots) or ``skip``.
    """
    spec = make_spec(cron, every, tz)

    def wrap(target: T) -> T:
        if isinstance(target, TaskFunction):
            task_name, origin = target.name, target.spec.origin
        elif isinstance(target, type) and issubclass(target, Task) and not target.abstract:
            task_name, origin = target.name or "", target.spec.origin
        else:
            raise TypeError(
                f"@periodic expects a task, got {target!r}: put @periodic above @task(...) "
                "(or on a Task subclass)"
            )
        encode_call(task_name, tuple(args), dict(kwargs or {}))  # refuse bad arguments now
        registry.add(Schedule(name or task_name, task_name, spec, tuple(args), dict(kwargs or {}),
                              queue, misfire, f"@periodic on {origin}"))  # fmt: skip
        return target

    return wrap
