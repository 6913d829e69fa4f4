"""The schedules a master runs: those declared in code plus the config's ``[[schedules]]``.

Duties: merge both sources (a name declared twice is an error), check that every schedule names
a task registered in this process and that its job could be enqueued (queue name, arguments,
payload size), and build the Redis records. Every problem is reported at once, as a
``ConfigError`` naming where the schedule was declared and what to do.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import ConfigError, EnqueueError
from ..registry import Registry, registry
from .model import Schedule, ScheduleRegistry, schedules
from .spec import make_spec


def from_entry(entry: dict[str, Any]) -> Schedule:
    """A ``[[schedules]]`` entry (already checked by the config loader) as a Schedule."""
    spec = make_spec(entry.get("cron"), entry.get("every"), entry.get("tz"))
    return Schedule(entry["name"], entry["task"], spec, tuple(entry.get("args") or ()),
                    dict(entry.get("kwargs") or {}), entry.get("queue"),
                    entry.get("misfire") or "run_once", entry["where"])  # fmt: skip


def _unknown(s: Schedule, tasks: Registry) -> str:
    names = tasks.names()
    match = difflib.get_close_matches(s.task, names, n=1)
    hint = f"did you mean {match[0]!r}? " if match else ""
    known = ", ".join(names[:10]) or "none"
    return (f"{s.source}: schedule {s.name!r} names unknown task {s.task!r}; {hint}"
            f"registered tasks: {known}. Import the module that defines it "
            "([workers] imports / --import) or fix the name.")  # fmt: skip


def collect(
    entries: list[dict[str, Any]],
    max_payload: int,
    tasks: Registry = registry,
    code: ScheduleRegistry = schedules,
) -> dict[str, dict[str, Any]]:
    """name -> Redis record of every schedule; raises ConfigError listing every problem."""
    errors: list[str] = []
    chosen: dict[str, Schedule] = {s.name: s for s in code.all()}
    for entry in entries:
        s = from_entry(entry)
        if s.name in chosen:
            errors.append(f"{s.source}: schedule name {s.name!r} is also declared by "
                          f"{chosen[s.name].source}; give one of them another name")  # fmt: skip
            continue
        chosen[s.name] = s
    records: dict[str, dict[str, Any]] = {}
    for name, s in sorted(chosen.items()):
        if s.task not in tasks:
            errors.append(_unknown(s, tasks))
            continue
        try:
            records[name] = s.record(tasks, max_payload)
        except EnqueueError as exc:
            errors.append(f"{s.source}: schedule {name!r}: {exc}")
    if errors:
        raise ConfigError("\n".join(errors))
    return records
