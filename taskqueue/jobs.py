"""Turning user calls into ``NewJob`` records, and job records into ``JobStatus`` answers.

Shared by the sync and asyncio clients; no I/O here.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from . import options
from .broker import NewJob
from .errors import InvalidOption, InvalidQueueName, PayloadTooLarge, UnknownTask
from .keys import QUEUE_NAME_RE
from .registry import Registry, TaskOptions
from .serialization import encode_call
from .task import resolve

_DEFAULTS = TaskOptions()


#: Queue names already checked (up to ``_CHECKED_MAX``): a producer names the same few queues
#: in every call.
_checked: set[str] = set()
_CHECKED_MAX = 1024


def check_queue(queue: str) -> str:
    if type(queue) is str and queue in _checked:
        return queue
    if not isinstance(queue, str) or not QUEUE_NAME_RE.match(queue):
        raise InvalidQueueName(f"invalid queue name {queue!r}: use 1 to 128 of A-Z a-z 0-9 _ . : -")
    if len(_checked) < _CHECKED_MAX:
        _checked.add(queue)
    return queue


def _seconds(value: float | timedelta | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class EnqueueOptions(TypedDict, total=False):
    """The per-job options of ``enqueue_with`` (both clients, and ``task.enqueue_with``)."""

    #: Queue to use instead of the task's own.
    queue: str | None
    #: Seconds (or a timedelta) before the job may run.
    delay: float | timedelta | None
    #: When the job may run (a datetime).
    at: datetime | None
    #: Idempotency key: while it lives, enqueueing again returns the first job's id.
    key: str | None
    #: Retries after the first failed attempt, instead of the task's.
    max_retries: int | None
    #: Seconds an attempt may run, instead of the task's.
    timeout: float | None
    #: Discard the job, counted as ``expired``, if no worker started it within these seconds
    #: (or a timedelta) after enqueue, or by this datetime.
    expires: float | timedelta | datetime | None
    #: False: allow a task name only the workers know.
    strict: bool


def make_job(
    registry: Registry,
    target: Any,
    args: tuple | list = (),
    kwargs: dict | None = None,
    *,
    queue: str | None = None,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
    key: str | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    strict: bool = True,
    expires: float | timedelta | datetime | None = None,
    max_payload: int,
) -> NewJob:
    """Validate one call and encode it; raise an EnqueueError subclass naming the culprit."""
    name, spec = resolve(target, registry)
    if spec is None and strict:
        known = ", ".join(registry.names()[:10]) or "none registered in this process"
        raise UnknownTask(
            f"unknown task {name!r} (known: {known}). Import the module that defines it, "
            "or pass strict=False to enqueue a task only the workers know."
        )
    opts = spec.options if spec else _DEFAULTS
    queue = check_queue(opts.queue if queue is None else queue)
    # Each option is checked only when given: most calls give none (a single enqueue's client
    # time is what a producer waits for).
    if timeout is not None:
        timeout = options.timeout(timeout, name)
    if max_retries is not None:
        max_retries = options.retries(max_retries, name)
    if delay is not None:
        delay = options.seconds("delay", delay, name, zero_ok=True)
    if at is not None:
        at = options.at(at)
    if key is not None:
        key = options.key(key)
    expires_ms = 0 if expires is None else _expires_ms(expires, name)
    if not isinstance(args, (tuple, list)):
        raise InvalidOption(f"args of task {name!r} must be a tuple or list, got {args!r}")
    if kwargs is not None and not (
        isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)
    ):
        raise InvalidOption(f"kwargs of task {name!r} must be a dict with string keys")
    payload = encode_call(name, args, kwargs)
    if len(payload) > max_payload:
        raise PayloadTooLarge(
            f"payload of task {name!r} is {len(payload)} bytes, over the limit of "
            f"{max_payload} bytes. Store large data elsewhere and pass a reference."
        )
    if timeout is None:
        timeout = opts.timeout
    return NewJob(
        id=os.urandom(16).hex(),  # 128 random bits, 32 hex digits (uuid4().hex costs 4x more)
        task=name,
        queue=queue,
        payload=payload,
        max_retries=opts.max_retries if max_retries is None else int(max_retries),
        timeout_ms=int(timeout * 1000) if timeout else 0,
        delay_ms=0 if delay is None else max(0, int(_seconds(delay) * 1000)),
        at_ms=int(at.timestamp() * 1000) if at is not None else 0,
        key=key,
        dead_letter=opts.dead_letter,
        ttl_ms=int(opts.result_ttl * 1000),
        expires_ms=expires_ms,
    )


def _expires_ms(expires: float | timedelta | datetime | None, task: str) -> int:
    """``expires`` (seconds or a timedelta after enqueue, or a datetime) as ms after enqueue;
    0 = never. A datetime already past expires the job at once (1 ms)."""
    if expires is None:
        return 0
    if isinstance(expires, datetime):
        return max(1, int((expires.timestamp() - time.time()) * 1000))
    return max(1, int(options.seconds("expires", expires, task) * 1000))


def split_call(call: Any) -> tuple[Any, tuple, dict]:
    """Accept (task,), (task, args) or (task, args, kwargs) for enqueue_many."""
    if not isinstance(call, (tuple, list)) or not 1 <= len(call) <= 3:
        raise TypeError(f"enqueue_many expects (task, args, kwargs) tuples, got {call!r}")
    target = call[0]
    args = tuple(call[1]) if len(call) > 1 else ()
    kwargs = dict(call[2]) if len(call) > 2 and call[2] else {}
    return target, args, kwargs


def _int(value: Any) -> int:
    """A counter from a record; 0 when it is missing or corrupt (a status read never fails)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _ms_to_dt(value: Any) -> datetime | None:
    ms = _int(value)
    try:
        return datetime.fromtimestamp(ms / 1000) if ms > 0 else None
    except (OverflowError, OSError, ValueError):
        return None


def _history(value: bytes | None) -> list[dict[str, Any]]:
    try:
        found = json.loads(value) if value else []
    except ValueError:
        return []
    return found if isinstance(found, list) else []


@dataclass
class JobStatus:
    """What Redis knows about a job. ``str(status)`` is its state."""

    id: str
    state: str
    task: str
    queue: str
    attempts: int = 0
    failures: int = 0
    stalls: int = 0
    error: str | None = None
    traceback: str | None = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.state

    @classmethod
    def from_record(cls, job_id: str, rec: Mapping[bytes, bytes]) -> JobStatus:
        r = {k.decode(): v for k, v in rec.items() if k != b"payload" and k != b"result"}

        def text(name: str) -> str | None:
            v = r.get(name)
            return v.decode("utf-8", "replace") if v else None

        return cls(
            id=job_id,
            state=text("state") or "unknown",
            task=text("task") or "",
            queue=text("queue") or "",
            attempts=_int(r.get("attempts")),
            failures=_int(r.get("failures")),
            stalls=_int(r.get("stalls")),
            error=text("error"),
            traceback=text("traceback"),
            enqueued_at=_ms_to_dt(r.get("enqueued_ms")),
            started_at=_ms_to_dt(r.get("started_ms")),
            finished_at=_ms_to_dt(r.get("finished_ms")),
            history=_history(r.get("history")),
        )


def deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def remaining(until: float | None, cap: float) -> float:
    """Seconds left before ``until`` (at most ``cap`` per blocking call), or raise TimeoutError."""
    if until is None:
        return cap
    left = until - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out waiting for the job's result")
    return min(left, cap)
