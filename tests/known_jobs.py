"""Known jobs for the metrics and HTTP API tests: what they count is known exactly."""

from __future__ import annotations

import time

from taskqueue import Retry, TaskQueue, task
from taskqueue.worker import Worker


def run_known_jobs(tq: TaskQueue, reg) -> dict[str, object]:
    """10 successes (20..100 ms), 3 jobs that fail once then succeed, 2 dead, 1 delayed."""

    @task(name="ok", registry=reg)
    def ok(ms):
        time.sleep(ms / 1000)

    tries: dict[int, int] = {}

    @task(name="flaky", registry=reg, max_retries=3)
    def flaky(i):
        tries[i] = tries.get(i, 0) + 1
        if tries[i] == 1:
            raise Retry(delay=0.01)

    @task(name="boom", registry=reg, max_retries=0)
    def boom():
        raise ValueError("boom")

    ok_ids = tq.enqueue_many([(ok, (ms,)) for ms in [20, 40, 60, 80, 100] * 2])
    tq.enqueue_many([(flaky, (i,)) for i in range(3)])
    dead = tq.enqueue_many([(boom, ()) for _ in range(2)])
    delayed = tq.enqueue_with(ok, (1,), delay=600)
    Worker(tq, registry=reg, max_concurrent_tasks=4, queues=["default"]).run(burst=True)
    return {"ok": ok_ids, "dead": dead, "delayed": delayed}
