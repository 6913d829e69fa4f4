"""Which tasks the live workers can run: published to Redis, read by workers and the HTTP API.

Format (one HASH per namespace, ``<base>registered``)::

    field  = the publisher's id: a master id (``host:pid``; it speaks for all its workers) or a
             standalone worker's name
    value  = JSON {"queues": ["default", ...], "tasks": ["app.send", ...],
                   "options": {"app.send": {"queue", "max_retries", "timeout", "is_async",
                                            "origin", ...}, ...},
                   "expires_ms": <Unix ms>}

This hash is the one list of live tasks: the unknown-task check below reads ``tasks``, and the
HTTP API's ``/registered`` and ``/registry/info`` read ``options`` (``Registry.describe()``).

Publishers rewrite their entry at least every ``PUBLISH_EVERY`` seconds (a master every 10 s
with its masters-index beat and at once after a reload, a standalone worker with its lease
timer) and delete it when they stop. An entry
whose ``expires_ms`` has passed belongs to a process that died: readers ignore it, and
``live_entries`` returns the stale fields so a caller may HDEL them. Reading is one HGETALL.

A worker that fetches a job for a task it does not know asks ``serves``: if some live worker
consuming the job's queue registers the task (a deploy in progress), the job is retried with
backoff, counted against its retries; if none does, it goes to the dead letter at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Longest time between two publications of an entry (s), and how long one stays valid.
PUBLISH_EVERY = 10.0
VALID_FOR = 30.0


def entry(
    queues: Sequence[str], tasks: Iterable[Mapping[str, Any]], now: float | None = None
) -> str:
    """The JSON value a publisher writes for itself; ``tasks`` as ``Registry.describe()``
    gives them (a dict with ``name`` and the task's options each)."""
    now = time.time() if now is None else now
    options = {t["name"]: {k: v for k, v in t.items() if k != "name"} for t in tasks}
    return json.dumps({"queues": list(queues), "tasks": sorted(options), "options": options,
                       "expires_ms": int((now + VALID_FOR) * 1000)},
                      separators=(",", ":"), default=str)  # fmt: skip


def live_entries(
    raw: Mapping[Any, Any], now: float | None = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(live entries by publisher id, ids of expired or unreadable entries) from HGETALL."""
    now_ms = int((time.time() if now is None else now) * 1000)
    live: dict[str, dict[str, Any]] = {}
    stale: list[str] = []
    for key, value in raw.items():
        who = key.decode() if isinstance(key, bytes) else str(key)
        try:
            rec = json.loads(value)
            ok = rec["expires_ms"] > now_ms and isinstance(rec["tasks"], list)
        except (ValueError, KeyError, TypeError):
            ok = False
        if ok:
            live[who] = rec
        else:
            stale.append(who)
    return live, stale


def serves(entries: Mapping[str, Mapping[str, Any]], task: str, queue: str) -> list[str]:
    """Ids of the live publishers that consume ``queue`` and register ``task``."""
    return [who for who, rec in entries.items()
            if task in rec.get("tasks", ()) and queue in rec.get("queues", ())]  # fmt: skip


def by_task(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The live tasks by name, sorted: each task's options, ``publishers`` (the ids of the
    masters and standalone workers that register it) and ``consistent`` (false when two
    publishers register the name with different options: a rolling deploy)."""
    tasks: dict[str, dict[str, Any]] = {}
    for who, rec in sorted(entries.items()):
        options = rec.get("options") if isinstance(rec.get("options"), dict) else {}
        for name in rec.get("tasks", ()):
            opts = options.get(name) if isinstance(options.get(name), dict) else {}
            row = tasks.setdefault(name, {"name": name, **opts, "publishers": [],
                                          "consistent": True})  # fmt: skip
            row["publishers"].append(who)
            base = {k: v for k, v in row.items() if k not in ("name", "publishers", "consistent")}
            row["consistent"] = row["consistent"] and base == opts
    return dict(sorted(tasks.items()))
