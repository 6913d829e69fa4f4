"""The acker: record each job's outcome in Redis and log it.

Duties:
1. Acknowledge successes in batches: one ack script call for every result ready at that
   moment, while the next results queue up behind it.
2. Record a failure (retry with backoff, dead letter, failed or cancelled) with one fail call.
3. Settle each job with the worker once its outcome landed, and log its lifecycle event; a
   result that arrives after the lease was lost is discarded with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .. import logs
from ..backoff import backoff_ms
from ..registry import TaskOptions
from ..supervise import supervised
from .running import Running

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")


class Acker:
    """Records outcomes for ``worker``."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self._acks: list[tuple[Running, bytes]] = []
        self._task: asyncio.Task | None = None

    def ack(self, r: Running, payload: bytes) -> None:
        """Queue a success; it lands with the next batch."""
        self._acks.append((r, payload))
        if self._task is None:
            self._task = asyncio.ensure_future(supervised("acker", self._flush))

    async def drain(self) -> None:
        """Wait until every queued success has landed (or was given up)."""
        while self._task is not None or self._acks:
            if self._task is None:
                self._task = asyncio.ensure_future(supervised("acker", self._flush))
            await self._task

    async def _flush(self) -> None:
        """Land every queued success, batch by batch. A batch whose recording raised goes back
        to the front, so the supervisor's restart retries it: no job is left unsettled."""
        w = self.w
        try:
            while self._acks:
                batch, self._acks = self._acks, []
                try:
                    ok = await w.link.run_retry(w.broker.ack([(r.job, p) for r, p in batch]))
                except BaseException:
                    self._acks = batch + self._acks
                    raise
                self.landed([r for r, _ in batch], ok)
        finally:
            self._task = None

    def landed(self, batch: list[Running], ok: list[bool] | None) -> None:
        """An ack call for ``batch`` returned ``ok`` (one flag per job; None: given up):
        settle each job and log its outcome."""
        w = self.w
        now = time.monotonic()
        log.debug("acked a batch of %d job(s) in one call", len(batch))
        for r, acked in zip(batch, ok or [False] * len(batch), strict=True):
            if r.in_thread:
                w.slot_freed(r)
            w.settled(r)
            if acked:
                ms = (now - r.started) * 1000
                if w.perf is not None:
                    w.perf.record(ms, r.job.wait_ms, True)
                logs.lifecycle(log, "succeeded", task_id=r.job.id, task_name=r.job.task,
                               queue=r.job.queue, attempt=r.job.attempts, worker=w.name,
                               duration_ms=ms)  # fmt: skip
            else:
                log.warning("job %s finished after its lease was lost; result discarded "
                            "(duplicate execution)", r.job.id)  # fmt: skip

    async def fail(
        self,
        r: Running,
        opts: TaskOptions,
        error: str,
        tb: str,
        *,
        retry: bool = True,
        delay_ms: int | None = None,
        event: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        """Record a failed attempt: a retry after ``delay_ms`` (default: the task's backoff),
        or, with ``retry=False`` or no retries left, its end."""
        w = self.w
        w.slot_freed(r)
        job = r.job
        if delay_ms is None:
            delay_ms = backoff_ms(job.failures + 1, opts.retry_backoff, opts.retry_backoff_max)
        state = await w.link.run_retry(w.broker.fail(job, error, tb, delay_ms, retry=retry))
        w.settled(r)
        ms = (time.monotonic() - r.started) * 1000
        if state == "lost":
            log.warning("job %s failed after its lease was lost; outcome discarded", job.id)
            return
        if w.perf is not None:
            w.perf.record(ms, job.wait_ms, False)
        kind = {"scheduled": "retrying", "dead": "dead"}.get(state or "", "failed")
        logs.lifecycle(log, event or kind, task_id=job.id, task_name=job.task, queue=job.queue,
                       attempt=job.attempts, worker=w.name, duration_ms=ms, exc=exc,
                       error=error, outcome=state or "failed", retry_in_ms=delay_ms)  # fmt: skip
