"""The job a task is running for, readable from inside the task (sync or async).

    from taskqueue.context import current_job
    job = current_job()   # None outside a worker
    job.id, job.attempt, job.worker

The worker sets it for each job's asyncio task, and sync tasks see it in their thread too.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running task may know about its job."""

    id: str
    task: str
    queue: str
    #: Runs started so far, this one included (1 on the first run).
    attempt: int
    #: The worker id that holds the lease (its held set in Redis is named after it).
    worker: str
    #: The lease token of this run.
    token: str


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "taskqueue_job", default=None
)


def current_job() -> JobContext | None:
    """The job the calling task runs for, or None outside a worker."""
    return _current.get()


def set_current(job: JobContext) -> None:
    """Called by the worker in each job's own asyncio task (a fresh context per job)."""
    _current.set(job)
