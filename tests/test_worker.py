"""The single-process Worker end to end: real Redis, real threads and coroutines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack
import pytest
import redis
from conftest import running_worker

from taskqueue import Reject, Retry, Task, TaskQueue, task
from taskqueue.errors import TaskFailed
from taskqueue.testing import assert_conserved, wait_for
from taskqueue.worker import Worker

pytestmark = pytest.mark.cluster


def test_sync_and_async_tasks_run_and_return_results(client, reg, worker_factory) -> None:
    @task(name="add", registry=reg)
    def add(a, b):
        return a + b

    @task(name="mul", registry=reg)
    async def mul(a, b):
        await asyncio.sleep(0)
        return a * b

    class Greet(Task):
        abstract = True

    class Hello(Greet):
        name = "hello"

        async def run(self, who):
            return f"hello {who}"

    reg.add(Hello.spec)
    with worker_factory():
        a, m, h = client.enqueue(add, 2, 3), client.enqueue(mul, 4, 5), client.enqueue(Hello, "x")
        assert client.result(a, timeout=10) == 5
        assert client.result(m, timeout=10) == 20
        assert client.result(h, timeout=10) == "hello x"
    assert client.status(a).state == "succeeded"


@pytest.mark.smoke
def test_burst_mode_returns_when_the_queues_are_empty(client, reg) -> None:
    @task(name="noop", registry=reg)
    async def noop(i):
        return i

    ids = client.enqueue_many([(noop, (i,)) for i in range(300)])
    worker = Worker(client, registry=reg, max_concurrent_tasks=20)
    worker.run(burst=True)
    assert worker.processed == 300
    assert assert_conserved(client.redis, ids)["succeeded"] == 300


def test_failure_is_retried_then_dead_lettered_with_the_error(client, reg) -> None:
    calls = []

    @task(name="flaky", registry=reg, max_retries=2, retry_backoff=0.01)
    def flaky():
        calls.append(1)
        raise ValueError("nope")

    job_id = client.enqueue(flaky)
    Worker(client, registry=reg).run(burst=True)
    st = client.status(job_id)
    assert len(calls) == 3 and st.state == "dead" and st.error == "ValueError: nope"
    assert "raise ValueError" in st.traceback
    with pytest.raises(TaskFailed) as info:
        client.result(job_id, timeout=1)
    assert info.value.state == "dead" and "nope" in info.value.error


def test_retry_and_reject_control_flow(client, reg) -> None:
    seen = []

    @task(name="again", registry=reg, max_retries=5)
    def again():
        seen.append(1)
        if len(seen) < 2:
            raise Retry(delay=0.01, reason="not yet")
        return "ok"

    @task(name="refuse", registry=reg, max_retries=5)
    def refuse():
        raise Reject("never")

    a, r = client.enqueue(again), client.enqueue(refuse)
    Worker(client, registry=reg).run(burst=True)
    assert client.result(a, timeout=1) == "ok"
    st = client.status(r)
    assert (st.state, st.failures, st.error) == ("dead", 1, "Reject: never")


def test_failed_state_when_dead_letter_is_off(client, reg) -> None:
    @task(name="bad", registry=reg, max_retries=0, dead_letter=False)
    def bad():
        raise KeyError("k")

    job_id = client.enqueue(bad)
    Worker(client, registry=reg).run(burst=True)
    assert client.status(job_id).state == "failed" and client.dead_letter() == []


def test_async_task_over_its_timeout_is_stopped_and_counted_failed(client, reg) -> None:
    @task(name="slow", registry=reg, timeout=0.05, max_retries=0)
    async def slow():
        await asyncio.sleep(30)

    job_id = client.enqueue(slow)
    Worker(client, registry=reg).run(burst=True)
    st = client.status(job_id)
    assert st.state == "dead" and st.error.startswith("TimeoutError: task exceeded its time limit")


@pytest.mark.smoke
def test_bad_input_goes_to_dead_letter_and_the_worker_keeps_going(client, reg) -> None:
    @task(name="ok", registry=reg)
    def ok(x):
        return x

    unknown = client.enqueue_with("no.such.task", (1,), strict=False)
    garbage = client.enqueue(ok, 1)
    client.redis.hset(client.keys.job(garbage), "payload", b"\xc1\xff not msgpack")
    wrong_shape = client.enqueue(ok, 1)
    client.redis.hset(client.keys.job(wrong_shape), "payload", msgpack.packb({"a": 1}))
    good = client.enqueue(ok, 7)
    Worker(client, registry=reg).run(burst=True)
    assert client.result(good, timeout=1) == 7
    dead = {d.id: d for d in client.dead_letter()}
    assert set(dead) == {unknown, garbage, wrong_shape}
    assert "unknown task 'no.such.task'" in dead[unknown].error
    assert "malformed payload for task 'ok'" in dead[garbage].error
    assert "envelope" in dead[wrong_shape].error
    assert all(d.failures == 1 for d in dead.values()), "bad input must not be retried"


def test_unserializable_result_is_a_clear_failure(client, reg) -> None:
    @task(name="weird", registry=reg, max_retries=0)
    def weird():
        return object()

    job_id = client.enqueue(weird)
    Worker(client, registry=reg).run(burst=True)
    assert "MessagePack cannot encode" in client.status(job_id).error


def test_concurrency_limit_is_respected(client, reg, worker_factory) -> None:
    state = {"now": 0, "peak": 0}

    @task(name="track", registry=reg)
    async def track():
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1

    ids = client.enqueue_many([(track, ()) for _ in range(40)])
    with worker_factory(max_concurrent_tasks=4):
        wait_for(lambda: all(client.status(i).state == "succeeded" for i in ids), what="40 jobs")
    assert state["peak"] == 4


def test_graceful_stop_finishes_running_jobs(client, reg) -> None:
    @task(name="nap", registry=reg)
    async def nap():
        await asyncio.sleep(0.3)
        return "rested"

    worker = Worker(client, registry=reg, grace_period=10)
    job_id = client.enqueue(nap)

    async def scenario():
        run = asyncio.ensure_future(worker.run_async())
        await asyncio.to_thread(wait_for, lambda: client.status(job_id).state == "active")
        worker.stop()
        await run

    asyncio.run(scenario())
    assert client.result(job_id, timeout=1) == "rested"


def test_stop_past_the_grace_period_releases_jobs_without_spending_attempts(client, reg) -> None:
    @task(name="long", registry=reg)
    async def long():
        await asyncio.sleep(60)

    ids = client.enqueue_many([(long, ()) for _ in range(3)])
    worker = Worker(client, registry=reg, grace_period=0.1)

    async def scenario():
        run = asyncio.ensure_future(worker.run_async())
        await asyncio.to_thread(
            wait_for, lambda: all(client.status(i).state == "active" for i in ids)
        )
        worker.stop()
        await run

    asyncio.run(scenario())
    for job_id in ids:
        st = client.status(job_id)
        assert (st.state, st.attempts, st.failures) == ("queued", 0, 0)


def test_cancel_of_a_running_job_stops_it(redis_url, reg) -> None:
    client = TaskQueue(redis_url, registry=reg, broker_options={"lease_ms": 300})

    @task(name="forever", registry=reg)
    async def forever():
        await asyncio.sleep(60)

    job_id = client.enqueue(forever)
    worker = Worker(client, registry=reg)

    async def scenario():
        run = asyncio.ensure_future(worker.run_async())
        await asyncio.to_thread(wait_for, lambda: client.status(job_id).state == "active")
        assert client.cancel(job_id) is True
        await asyncio.to_thread(
            wait_for, lambda: client.status(job_id).state == "cancelled", 10, "cancel"
        )
        worker.stop()
        await run

    asyncio.run(scenario())
    with pytest.raises(TaskFailed, match="cancelled"):
        client.result(job_id, timeout=1)


def test_cancel_in_each_waiting_state(client) -> None:
    queued = client.enqueue_with("t", (1,), strict=False)
    scheduled = client.enqueue_with("t", (1,), strict=False, delay=60)
    assert client.cancel(queued) and client.cancel(scheduled)
    assert {client.status(queued).state, client.status(scheduled).state} == {"cancelled"}
    assert client.queue_lengths()["default"] == {
        "queued": 0,
        "scheduled": 0,
        "active": 0,
        "paused": 0,
    }
    assert client.cancel(queued) is False, "a finished job cannot be cancelled again"
    assert client.cancel("no-such-id") is False


def test_result_blocks_until_the_job_finishes(client, reg, worker_factory) -> None:
    @task(name="later", registry=reg)
    async def later():
        await asyncio.sleep(0.2)
        return 1

    job_id = client.enqueue(later)
    with pytest.raises(TimeoutError):
        client.result(job_id, timeout=0.05)
    with worker_factory():
        assert client.result(job_id, timeout=10) == 1


def test_delayed_jobs_run_no_earlier_than_due(client, reg, worker_factory) -> None:
    ran_at = {}

    @task(name="stamp", registry=reg)
    def stamp(tag):
        ran_at[tag] = client.redis.time()

    with worker_factory():
        t0 = client.redis.time()
        job_id = client.enqueue_with(stamp, ("d",), delay=0.3)
        client.result(job_id, timeout=10)
    elapsed = (ran_at["d"][0] - t0[0]) + (ran_at["d"][1] - t0[1]) / 1e6
    assert elapsed >= 0.3


def slot_node(client: TaskQueue) -> dict[str, Any]:
    """On a cluster, ``target_nodes``: the node that owns the namespace's slot, which the worker
    talks to; else nothing."""
    r = client.redis
    return {"target_nodes": r.get_node_from_key(client.keys.stats)} if isinstance(
        r, redis.RedisCluster) else {}  # fmt: skip


def blocked_in_blpop(r: Any, **on_node: Any) -> bool:
    """Whether a client of the server (on a cluster: of ``target_nodes``) is blocked in BLPOP."""
    return any(c.get("cmd") == "blpop" and "b" in c.get("flags", "")
               for c in r.client_list(**on_node))  # fmt: skip


def test_an_idle_worker_does_not_poll_redis(client, reg, worker_factory) -> None:
    """Not one command in 3 s: a worker polling even once a second would issue three."""
    r = client.redis
    on_node = slot_node(client)
    # The test's own reads, and the replica's acks to its primary (once a second).
    ignored = ("cmdstat_info", "cmdstat_client|list", "cmdstat_replconf")

    def counts() -> dict[str, int]:
        stats = r.info("commandstats", **on_node)
        return {k: v["calls"] for k, v in stats.items() if k not in ignored}

    last: list = [None, 0.0]  # counts, and since when they have not moved

    def settled() -> bool:
        seen, now = counts(), time.monotonic()
        if seen != last[0]:
            last[:] = [seen, now]
            return False
        return now - last[1] >= 0.3 and blocked_in_blpop(r, **on_node)

    with worker_factory():
        wait_for(settled, 30, "the worker to settle into its blocking wait")
        before = last[0]
        time.sleep(3.0)  # the measurement window, not a wait for an event
        after = counts()
    assert {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)} == {}


def test_jobs_finishing_while_the_worker_waits_idle_keep_its_connections(
    client, reg, worker_factory
) -> None:
    """A finished job frees a slot while the fetcher blocks in BLPOP. That must not end the wait:
    ending it dropped the connection (a cancelled command) and opened a new one per job."""

    @task(name="one", registry=reg)
    def one(i):
        time.sleep(0.05)  # finishes after the fetcher went back to its blocking wait
        return i

    with worker_factory(max_concurrent_tasks=4) as worker:
        assert client.result(client.enqueue(one, 0), timeout=10) == 0
        before = client.redis.info("stats")["total_connections_received"]
        fetched = worker.fetcher.fetches
        for i in range(1, 21):  # one at a time: each arrives to an idle worker
            assert client.result(client.enqueue(one, i), timeout=10) == i
        opened = client.redis.info("stats")["total_connections_received"] - before
        fetches = worker.fetcher.fetches - fetched
    assert opened <= 2, f"{opened} connections opened for 20 jobs"
    # One fetch per job: a short fetch goes straight back to the idle wait (a safety fetch or a
    # token left by the previous job's fetch may add one or two).
    assert fetches <= 23, f"{fetches} fetches for 20 jobs"


def test_quiet_ends_an_idle_wait_and_fetches_nothing(client, reg, worker_factory) -> None:
    @task(name="q", registry=reg)
    def q():
        return 1

    with worker_factory() as worker:
        r, on_node = client.redis, slot_node(client)
        wait_for(lambda: blocked_in_blpop(r, **on_node), 30, "the worker's idle wait")
        loop = worker._loop
        assert loop is not None
        loop.call_soon_threadsafe(worker.set_quiet, True)
        wait_for(lambda: worker.quiet, 5, "quiet")
        job_id = client.enqueue(q)
        time.sleep(0.5)  # a quiet worker must leave the job waiting
        assert client.status(job_id).state == "queued"
        loop.call_soon_threadsafe(worker.set_quiet, False)
        assert client.result(job_id, timeout=10) == 1


def test_idle_blocking_waits_fit_in_the_socket_timeout(redis_url, reg, caplog) -> None:
    """A blocking wait longer than the connection's socket timeout would look like an outage."""
    caplog.set_level("WARNING", logger="taskqueue.worker")
    client = TaskQueue(redis_url + "?socket_timeout=1.5", registry=reg)
    with running_worker(client, reg):
        time.sleep(3.5)  # idle across more than two socket timeouts
    assert not [r for r in caplog.records if "lost Redis" in r.getMessage()]


def test_result_waits_longer_than_the_socket_timeout(redis_url, reg) -> None:
    client = TaskQueue(redis_url + "?socket_timeout=1", registry=reg)
    job_id = client.enqueue_with("later", (), strict=False)
    with pytest.raises(TimeoutError):
        client.result(job_id, timeout=2.5)


def test_a_sync_task_past_its_limit_gets_soft_time_limit_exceeded(client, reg) -> None:
    from taskqueue.errors import SoftTimeLimitExceeded

    seen = []

    @task(name="spin", registry=reg, timeout=0.2, max_retries=0)
    def spin():
        try:
            while True:  # pure Python: the soft limit interrupts it
                pass
        except SoftTimeLimitExceeded:
            seen.append("interrupted")
            raise

    job_id = client.enqueue(spin)
    Worker(client, registry=reg).run(burst=True)
    st = client.status(job_id)
    assert st.state == "dead" and st.error.startswith("TimeoutError")
    wait_for(lambda: seen == ["interrupted"], what="the thread to see the soft limit")


def test_hooks_see_every_job_start_and_settle(client, reg) -> None:
    from taskqueue.worker import WorkerHooks

    @task(name="ok", registry=reg)
    def ok(i):
        return i

    @task(name="bad", registry=reg, max_retries=0)
    async def bad(i):
        raise ValueError(i)

    class Seen(WorkerHooks):
        def __init__(self) -> None:
            self.started: list[str] = []
            self.settled: list[str] = []

        def job_started(self, r) -> None:
            self.started.append(r.job.id)

        def job_settled(self, r) -> None:
            self.settled.append(r.job.id)

    seen = Seen()
    ids = client.enqueue_many([(ok, (i,)) for i in range(20)] + [(bad, (1,))])
    worker = Worker(client, registry=reg, hooks=seen)
    worker.run(burst=True)
    assert sorted(seen.started) == sorted(ids)
    assert sorted(seen.settled) == sorted(ids)
    assert not worker.running


def test_one_worker_runs_sync_and_async_tasks_side_by_side(client, reg) -> None:
    import threading

    from taskqueue.context import current_job

    @task(name="sync_kind", registry=reg)
    def sync_kind(i):
        return [i, "sync", threading.current_thread().name, current_job().worker]

    @task(name="async_kind", registry=reg)
    async def async_kind(i):
        await asyncio.sleep(0)
        return [i, "async", threading.current_thread().name, current_job().worker]

    calls = [(sync_kind if i % 2 else async_kind, (i,)) for i in range(200)]
    ids = client.enqueue_many(calls)
    worker = Worker(client, registry=reg, max_concurrent_tasks=5)
    worker.run(burst=True)
    results = [client.result(i, timeout=10) for i in ids]
    assert {r[3] for r in results} == {worker.name}, "every job ran in this one worker"
    assert [r[0] for r in results] == list(range(200))
    sync_threads = {r[2] for r in results if r[1] == "sync"}
    async_threads = {r[2] for r in results if r[1] == "async"}
    assert all(t.startswith("tq-sync-") for t in sync_threads), sync_threads
    assert async_threads == {threading.current_thread().name}  # the worker's event loop
    assert assert_conserved(client.redis, ids)["succeeded"] == 200


def test_cancel_of_a_running_sync_job_stops_its_thread(redis_url, reg) -> None:
    client = TaskQueue(redis_url, registry=reg, broker_options={"lease_ms": 300})
    stopped = []

    @task(name="loop_forever", registry=reg)
    def loop_forever():
        try:
            for _ in range(6000):
                time.sleep(0.01)
        except BaseException as exc:
            stopped.append(type(exc).__name__)
            raise

    job_id = client.enqueue(loop_forever)
    with running_worker(client, reg) as worker:
        wait_for(lambda: client.status(job_id).state == "active", 10, "the job to start")
        assert client.cancel(job_id) is True
        wait_for(lambda: client.status(job_id).state == "cancelled", 10, "the cancel")
        wait_for(lambda: not worker.running, 10, "the slot to be given back")
    assert stopped, "the task's code was interrupted in its thread"
    with pytest.raises(TaskFailed, match="cancelled"):
        client.result(job_id, timeout=1)
