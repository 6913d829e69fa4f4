"""A schedule's definition, where it was declared, and its record in Redis.

Duties:
1. ``Schedule``: name, task, arguments, queue, spec (cron or interval) and misfire policy.
2. ``ScheduleRegistry``: the schedules declared in code with ``@periodic`` (one per name).
3. ``record``: the fields stored in the schedule's hash (the job template, already encoded and
   checked like an enqueue, plus a digest that changes whenever the definition does).
4. ``spec_of``: rebuild the spec from a stored record (tqctl, other masters).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..jobs import make_job
from ..registry import Registry
from .plan import MISFIRE_POLICIES
from .spec import Cron, Every

NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(frozen=True)
class Schedule:
    """One periodic job: ``task(*args, **kwargs)`` on ``queue`` at every slot of ``spec``."""

    name: str
    task: str
    spec: Cron | Every
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None  # None: the task's own queue
    misfire: str = "run_once"
    source: str = "code"  # where it was declared, for errors and `tqctl schedules`

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise ValueError(
                f"schedule name {self.name!r} is invalid: use 1 to 128 of A-Z a-z 0-9 _ . : -"
            )
        if self.misfire not in MISFIRE_POLICIES:
            raise ValueError(
                f"misfire {self.misfire!r} is invalid; allowed: {', '.join(MISFIRE_POLICIES)}"
            )

    def record(self, tasks: Registry, max_payload: int) -> dict[str, Any]:
        """The hash fields of this schedule in Redis; raises EnqueueError like an enqueue would."""
        job = make_job(tasks, self.task, self.args, self.kwargs, queue=self.queue,
                       max_payload=max_payload)  # fmt: skip
        spec = self.spec
        rec: dict[str, Any] = {
            "name": self.name, "task": job.task, "queue": job.queue, "payload": job.payload,
            "max_retries": job.max_retries, "timeout_ms": job.timeout_ms,
            "dead_letter": 1 if job.dead_letter else 0, "ttl_ms": job.ttl_ms,
            "kind": "cron" if isinstance(spec, Cron) else "every",
            "cron": spec.expr if isinstance(spec, Cron) else "",
            "tz": spec.tz if isinstance(spec, Cron) else "",
            "every_ms": spec.ms if isinstance(spec, Every) else 0,
            "misfire": self.misfire, "source": self.source,
        }  # fmt: skip
        plain = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in rec.items()}
        digest = hashlib.sha1(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
        rec["digest"] = digest
        return rec


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def spec_of(rec: Mapping[Any, Any]) -> Cron | Every:
    """The spec of a stored schedule record (keys and values may be bytes)."""
    r = {_text(k): v for k, v in rec.items()}
    if _text(r.get("kind", "")) == "cron":
        return Cron(_text(r["cron"]), _text(r.get("tz") or "UTC"))
    return Every(int(r["every_ms"]))


class ScheduleRegistry:
    """Schedules declared in code; a second declaration of a name elsewhere is an error."""

    def __init__(self) -> None:
        self._by_name: dict[str, Schedule] = {}

    def add(self, schedule: Schedule) -> None:
        old = self._by_name.get(schedule.name)
        if old is not None and old.source != schedule.source:
            raise ValueError(
                f"schedule name {schedule.name!r} is already declared by {old.source}; cannot "
                f"also declare it in {schedule.source}. Give one of them another name=."
            )
        self._by_name[schedule.name] = schedule

    def all(self) -> list[Schedule]:
        return sorted(self._by_name.values(), key=lambda s: s.name)

    def remove(self, name: str) -> None:
        self._by_name.pop(name, None)


#: The schedules ``@periodic`` declares when a task module is imported.
schedules = ScheduleRegistry()
