"""Typed calls of the schedule scripts (``lua/schedule_*.lua``), built like ``broker.py``'s:
pure, so the master, tqctl and the HTTP API run them on their own connections."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..broker import DEFAULT_IDEM_TTL_MS, Call
from ..keys import Keys
from .plan import Step

#: Shortest life of a slot's idempotency key (ms); it lives two intervals, at most a day.
MIN_IDEM_TTL_MS = 60_000


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def idem_key(name: str, slot_ms: int) -> str:
    """The idempotency key of a slot's job: the schedule name plus the slot."""
    return f"schedule:{name}:{slot_ms}"


@dataclass(frozen=True)
class Fired:
    status: str  # fired, skipped, taken, early, paused, gone, stale
    now_ms: int
    job_id: str
    earliest_ms: int  # the earliest next slot of all schedules, -1 if none


class ScheduleCalls:
    """Builds schedule script calls for one namespace."""

    def __init__(self, keys: Keys, idem_ttl_ms: int = DEFAULT_IDEM_TTL_MS) -> None:
        self.keys = keys
        self.idem_ttl_ms = idem_ttl_ms

    def sync(self, records: Mapping[str, tuple[dict[str, Any], int]]) -> Call:
        """Make the stored schedules exactly ``records``: name -> (record, first slot)."""
        k = self.keys
        keys = [k.schedules, k.due]
        args: list[Any] = [k.base]
        for name, (rec, first) in records.items():
            keys.append(k.schedule(name))
            fields = [(f, v) for f, v in rec.items() if f != "digest"]
            args += [name, rec["digest"], first, len(fields)]
            args += [x for pair in fields for x in pair]

        def parse(raw: list) -> dict[str, int]:
            return dict(zip(("added", "changed", "removed", "unchanged"), raw, strict=True))

        return Call("schedule_sync", keys, args, parse)

    def fire(self, name: str, digest: str, queue: str, step: Step) -> Call:
        k = self.keys
        job_id = uuid.uuid4().hex
        slot = step.fire if step.fire is not None else step.expect
        keys = [k.schedule(name), k.due, k.stats, k.queues, k.job(job_id), k.ready(queue),
                k.wake(queue), k.idem(idem_key(name, slot))]  # fmt: skip
        ttl = min(self.idem_ttl_ms, max(MIN_IDEM_TTL_MS, 2 * (step.next - step.expect)))
        args = [name, digest, step.expect, -1 if step.fire is None else step.fire, step.missed,
                step.next, job_id, ttl]  # fmt: skip

        def parse(raw: list) -> Fired:
            return Fired(_s(raw[0]), int(raw[1]), _s(raw[2]), int(raw[3]))

        return Call("schedule_fire", keys, args, parse)

    def run_now(self, name: str, digest: str, queue: str) -> Call:
        k = self.keys
        job_id = uuid.uuid4().hex
        keys = [k.schedule(name), k.stats, k.queues, k.job(job_id), k.ready(queue), k.wake(queue)]
        return Call("schedule_run_now", keys, [name, digest, job_id],
                    lambda raw: (_s(raw[0]), _s(raw[1])))  # fmt: skip

    def pause(self, name: str) -> Call:
        return Call("schedule_pause", [self.keys.schedule(name), self.keys.due], [name], int)

    def resume(self, name: str, next_ms: int) -> Call:
        k = self.keys
        return Call("schedule_resume", [k.schedule(name), k.due], [name, next_ms], int)
