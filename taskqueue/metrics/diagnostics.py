"""Queue health analysis (pure): what looks wrong in a namespace, with what to do about it.

Findings, each ``{"queue", "problem", "severity", "count", "advice"}``:
- ``stuck_leases``: leases past their deadline that nobody recovered (no live master runs
  recovery, or workers hang);
- ``paused_with_jobs``: a paused queue holds waiting jobs;
- ``no_consumer``: jobs wait in a queue that no live master consumes;
- ``overdue_scheduled``: scheduled jobs more than ``OVERDUE_MS`` past due (nothing fetches the
  queue, so nothing promotes them);
- ``dead_letter_growth``: jobs dead-lettered in the last 5 and 60 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .snapshot import MetricsSnapshot

#: Scheduled jobs this late (ms) are reported.
OVERDUE_MS = 60_000


def _finding(queue: str | None, problem: str, severity: str, count: int, advice: str) -> dict:
    return {"queue": queue, "problem": problem, "severity": severity, "count": count,
            "advice": advice}  # fmt: skip


def diagnose(
    snap: MetricsSnapshot, expired: Mapping[str, int], overdue: Mapping[str, int]
) -> dict[str, Any]:
    """``expired``/``overdue``: per queue, leases past deadline and scheduled jobs past
    ``OVERDUE_MS`` (``reader.read_lateness``)."""
    consumed = {q for m in snap.masters for q in m.queues}
    found = []
    for name, q in sorted(snap.queues.items()):
        if expired.get(name):
            found.append(_finding(name, "stuck_leases", "warning", expired[name],
                                  "leases expired and were not recovered: is a master running "
                                  "(it recovers them), or are its workers hung?"))  # fmt: skip
        if q.paused and q.queued:
            found.append(_finding(name, "paused_with_jobs", "warning", q.queued,
                                  f"resume it: POST /queues/{name}/resume or "
                                  f"`tqctl queue resume {name}`"))  # fmt: skip
        if q.queued and name not in consumed:
            found.append(_finding(name, "no_consumer", "critical", q.queued,
                                  f"no live master consumes {name!r}: start "
                                  f"`task-worker worker -q {name}`"))  # fmt: skip
        if overdue.get(name):
            found.append(_finding(name, "overdue_scheduled", "warning", overdue[name],
                                  "scheduled jobs are past due: nothing fetches this queue"))  # fmt: skip
    dead5, dead60 = snap.window(5).count("dead"), snap.window(60).count("dead")
    if dead5:
        found.append(_finding(None, "dead_letter_growth", "warning", dead5,
                              "inspect GET /dead; retry with POST /dead/{id}/retry"))  # fmt: skip
    return {
        "healthy": not found,
        "findings": found,
        "queues": {
            name: {
                "queued": q.queued,
                "scheduled": q.scheduled,
                "active": q.active,
                "paused": q.paused,
                "consumed": name in consumed,
                "expired_leases": int(expired.get(name, 0)),
                "overdue_scheduled": int(overdue.get(name, 0)),
                "trend_per_s": round(q.trend_per_s, 4),
            }
            for name, q in sorted(snap.queues.items())
        },  # fmt: skip
        "dead_letter": {"size": snap.dead, "last_5_min": dead5, "last_60_min": dead60},
        "masters": {
            m.id: {
                "redis_down": m.redis_down,
                "spawn_halted": m.spawn_halted,
                "draining": m.draining,
                "quiet": m.quiet,
            }
            for m in snap.masters
        },  # fmt: skip
    }
