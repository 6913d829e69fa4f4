"""Maps task names to the code that runs them. One process-wide registry, filled at import time."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import options
from .errors import RegistryError


@dataclass(frozen=True)
class TaskOptions:
    """Per-task defaults; ``enqueue_with`` may override queue, max_retries and timeout per job."""

    queue: str = "default"
    #: Retries after the first failed attempt (0 = fail once and stop).
    max_retries: int = 3
    #: Seconds an attempt may run before it is stopped and counted as failed (None = no limit).
    timeout: float | None = None
    #: After the last failed attempt: keep the job in the dead letter (True) or just mark it failed.
    dead_letter: bool = True
    #: Seconds the result and the finished job record are kept.
    result_ttl: float = 86400.0
    #: Backoff before retry n is uniform in [0.5, 1.0] x min(cap, base * 2 ** (n - 1)) seconds.
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0

    def __post_init__(self) -> None:
        options.task_options(self)


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: its name, what to call, and its options."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    options: TaskOptions
    #: ``module.qualname`` of the code, to name both sides of a name clash.
    origin: str
    extra: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Name -> TaskSpec. Registering a different task under a taken name is an error."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}

    def add(self, spec: TaskSpec) -> None:
        old = self._tasks.get(spec.name)
        if old is not None and old.origin != spec.origin:
            raise RegistryError(
                f"task name {spec.name!r} is already registered to {old.origin}; "
                f"cannot also register {spec.origin}. Give one of them another name=."
            )
        self._tasks[spec.name] = spec

    def get(self, name: str) -> TaskSpec | None:
        return self._tasks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def remove(self, name: str) -> None:
        self._tasks.pop(name, None)

    def describe(self) -> list[dict[str, Any]]:
        """JSON-ready ``[{name, queue, max_retries, timeout, dead_letter, is_async, origin,
        ...}]``, sorted by name: what masters and standalone workers publish in the
        registered-tasks hash (``taskqueue/registered.py``), which the HTTP API's
        ``/registered`` reads."""
        return [
            {"name": s.name, "origin": s.origin, "is_async": s.is_async, **asdict(s.options)}
            for s in sorted(self._tasks.values(), key=lambda s: s.name)
        ]


#: The registry that ``@task`` and ``Task`` subclasses fill, and that workers read.
registry = Registry()


def is_async_callable(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func)
