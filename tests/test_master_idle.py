"""An idle pool does not poll Redis: at most one command per second per worker process, counted
by the server itself (INFO commandstats, commands run inside Lua scripts included)."""

from __future__ import annotations

import time

import pytest
import redis

from taskqueue.testing import wait_for


def total_calls(client: redis.Redis) -> int:
    return sum(v["calls"] for v in client.info("commandstats").values())


@pytest.mark.slow
def test_idle_pool_costs_at_most_one_command_per_second_per_worker(redis_url, masters) -> None:
    m = masters(redis_url, "-w", "2")
    m.wait_workers(2)
    client = redis.Redis.from_url(redis_url)
    time.sleep(1.0)  # let start-up traffic (boot fetches, first heartbeats) pass
    before = total_calls(client)
    window = 12.0
    time.sleep(window)  # the measurement window itself: nothing happens, and that is the point
    used = total_calls(client) - before - 1  # our own INFO
    assert used <= 2 * window, f"{used} commands in {window:.0f}s from an idle 2-worker pool"
    # And it still reacts at once: a job enqueued now runs promptly.
    from taskqueue import TaskQueue

    tq = TaskQueue(redis_url)
    job = tq.enqueue_with("m.noop", (5,), strict=False)
    wait_for(lambda: tq.status(job).state == "succeeded", 10, "the job to run")
    assert m.stop() == 0
