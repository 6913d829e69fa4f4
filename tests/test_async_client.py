"""AsyncTaskQueue: the same methods as TaskQueue, as coroutines, against a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from taskqueue import AsyncTaskQueue, task
from taskqueue.errors import JobNotFound, TaskFailed, UnknownTask
from taskqueue.worker import Worker

pytestmark = [pytest.mark.smoke, pytest.mark.cluster]


def test_async_client_round_trip(redis_url, reg, client) -> None:
    @task(name="double", registry=reg)
    async def double(x):
        return 2 * x

    @task(name="bad", registry=reg, max_retries=0)
    def bad():
        raise ValueError("no")

    async def scenario() -> None:
        async with AsyncTaskQueue(redis_url, registry=reg) as aq:
            with pytest.raises(UnknownTask):
                await aq.enqueue("nope")
            a = await aq.enqueue(double, 21)
            b = await aq.enqueue_with(bad, (), queue="default", key="once")
            assert await aq.enqueue_with(bad, (), key="once") == b
            many = await aq.enqueue_many([(double, (i,)) for i in range(5)])
            later = await aq.enqueue_with(double, (1,), delay=3600)
            assert (await aq.status(later)).state == "scheduled"
            assert await aq.cancel(later) is True
            lengths = await aq.queue_lengths()
            assert lengths["default"]["queued"] == 7
            assert await aq.pause("low_priority") and await aq.resume("low_priority")
            await asyncio.to_thread(Worker(client, registry=reg).run, True)
            assert await aq.result(a, timeout=5) == 42
            assert [await aq.result(j, timeout=5) for j in many] == [0, 2, 4, 6, 8]
            with pytest.raises(TaskFailed, match="ValueError: no"):
                await aq.result(b, timeout=5)
            assert [d.id for d in await aq.dead_letter()] == [b]
            assert await aq.retry_dead(b) == 1
            assert await aq.purge("default") == 1
            assert await aq.delete_dead() == 0
            with pytest.raises(JobNotFound):
                await aq.status("missing")
            assert "default" in await aq.queues()

    asyncio.run(scenario())
