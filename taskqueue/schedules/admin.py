"""Operating schedules from anywhere that reaches Redis: tqctl and the HTTP API.

Duties:
1. ``list_schedules``: one row per schedule with its spec, next and last firing (times from
   Redis), whether it is paused, what misfires did, and its last job's outcome.
2. ``ScheduleAdmin``: ``pause``, ``resume`` (from the next slot after now) and ``run_now``
   (one job at once, its slots unchanged), each one script; then a nudge to every running
   master so a scheduler that sleeps until its next known slot looks again at once.
``rows`` is pure (raw records in, rows out) so an asyncio reader can share it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import redis

from ..connection import redis_ms
from ..errors import TaskQueueError
from ..keys import Keys
from ..runner import SyncRunner
from .calls import ScheduleCalls
from .model import spec_of

#: The control command that makes scheduler masters re-read the next due slot.
NUDGE = "schedules"
_INT = ("next_ms", "last_slot_ms", "last_fired_ms", "last_missed", "skipped", "created_ms")


class NoSuchSchedule(TaskQueueError):
    """No schedule of that name exists in this namespace."""


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def row(rec: Mapping[bytes, bytes], now_ms: int, job: Mapping[str, Any] | None) -> dict[str, Any]:
    """One schedule as the listing shows it (``job``: its last job's state and error, if any)."""
    r = {_text(k): v for k, v in rec.items() if k != b"payload"}
    nums = {k: int(r[k]) if r.get(k) not in (None, b"") else None for k in _INT}
    paused = r.get("paused") == b"1"
    next_ms = None if paused else nums["next_ms"]
    out: dict[str, Any] = {
        "name": _text(r["name"]), "task": _text(r["task"]), "queue": _text(r["queue"]),
        "when": spec_of(rec).describe(), "tz": _text(r["tz"]) if r.get("tz") else None,
        "misfire": _text(r.get("misfire", b"run_once")),
        "paused": paused, "next_ms": next_ms, "next_at": _iso(next_ms),
        "next_in_s": None if next_ms is None else round((next_ms - now_ms) / 1000, 1),
        "last_fired_ms": nums["last_fired_ms"], "last_fired_at": _iso(nums["last_fired_ms"]),
        "last_slot_ms": nums["last_slot_ms"], "last_missed": nums["last_missed"] or 0,
        "skipped": nums["skipped"] or 0, "last_job": _text(r["last_job"]) if r.get("last_job") else None,
        "last_outcome": None, "last_error": None, "source": _text(r.get("source", b"")),
    }  # fmt: skip
    if out["last_job"]:
        state = (job or {}).get("state")
        out["last_outcome"] = state or "expired"
        out["last_error"] = (job or {}).get("error")
    return out


def list_schedules(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every schedule of the namespace, sorted by name (the data of ``GET /tasks/schedules``)."""
    now_ms = redis_ms(client)
    pipe = client.pipeline(transaction=False)
    names = client.smembers(keys.schedules)
    names = sorted(_text(n) for n in names)
    for n in names:
        pipe.hgetall(keys.schedule(n))
    recs = [r for r in pipe.execute() if r]
    last = [_text(r[b"last_job"]) if r.get(b"last_job") else None for r in recs]
    for job_id in last:
        if job_id:
            pipe.hmget(keys.job(job_id), "state", "error")
    replies = iter(pipe.execute())
    jobs: list[dict[str, Any] | None] = []
    for job_id in last:
        state, error = next(replies) if job_id else (None, None)
        jobs.append({"state": state and _text(state), "error": error and _text(error)})
    return [row(r, now_ms, j) for r, j in zip(recs, jobs, strict=True)]


class ScheduleAdmin:
    """Pause, resume and run-now for one namespace, on a sync redis-py client."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self.calls = ScheduleCalls(keys)
        self.run = SyncRunner(client)

    def _record(self, name: str) -> dict[bytes, bytes]:
        rec = self.redis.hgetall(self.keys.schedule(name))
        if not rec:
            known = ", ".join(sorted(_text(n) for n in self.redis.smembers(self.keys.schedules)))
            raise NoSuchSchedule(
                f"no schedule {name!r} in namespace {self.keys.base} (known: {known or 'none'}); "
                "see `tqctl schedules`"
            )
        return rec

    def pause(self, name: str) -> bool:
        """True if it was running; False if it was paused already."""
        self._record(name)
        return self.run(self.calls.pause(name)) == 1

    def resume(self, name: str) -> bool:
        """True if it was paused; False if it was running already."""
        spec = spec_of(self._record(name))
        done = self.run(self.calls.resume(name, spec.next_after(redis_ms(self.redis))))
        self.nudge()
        return done == 1

    def run_now(self, name: str) -> str:
        """Enqueue one job of the schedule now; its id."""
        for _ in range(3):
            rec = self._record(name)
            status, job_id = self.run(
                self.calls.run_now(name, _text(rec[b"digest"]), _text(rec[b"queue"]))
            )
            if status == "fired":
                return job_id
        raise NoSuchSchedule(f"schedule {name!r} changed or disappeared meanwhile; try again")

    def nudge(self) -> None:
        """Ask every running master to look at the schedules again (no reply awaited)."""
        ids = [_text(i) for i in self.redis.zrange(self.keys.masters, 0, -1)]
        body = json.dumps({"id": uuid.uuid4().hex, "cmd": NUDGE, "args": {}, "noreply": True})
        pipe = self.redis.pipeline(transaction=False)
        for master in ids:
            pipe.rpush(self.keys.control(master), body)
            pipe.expire(self.keys.control(master), 300)
        pipe.execute()
