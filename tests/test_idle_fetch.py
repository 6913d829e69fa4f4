"""An idle worker's fetch waits in Redis right behind its blocking wait (one connection, no
round trip between a wake token and the lease); stop and quiet end that wait without leasing.
On one server only: on a cluster the fetch follows the wait (redis-py routes each command)."""

from __future__ import annotations

import threading

from taskqueue import task
from taskqueue.context import current_job
from taskqueue.testing import wait_for
from taskqueue.worker import fetcher, thread_wait


def test_after_work_a_sync_job_runs_on_the_thread_whose_wait_leased_it(
    client, reg, worker_factory, monkeypatch
):
    """While work comes (a wait within fetcher.HOT_WAIT of the last, here made long), a
    processor thread does the idle wait and runs the sync job its fetch leased itself: no hop
    through the loop. An async job from the same kind of wait runs on the loop."""
    monkeypatch.setattr(fetcher, "HOT_WAIT", 30.0)
    waits: list[str] = []  # tokens of the fetches sent behind waits on threads
    inside = threading.local()  # set while this thread runs a wait (ThreadWait.run)
    run = thread_wait.ThreadWait.run

    def recorded(self, procs):  # noqa: ANN001
        waits.append(self.fetch.args[2])
        inside.wait = self.fetch.args[2]
        try:
            run(self, procs)
        finally:
            inside.wait = None

    monkeypatch.setattr(thread_wait.ThreadWait, "run", recorded)

    @task(name="where", registry=reg)
    def where(i: int) -> list[str | None]:
        return [getattr(inside, "wait", None), current_job().token]  # type: ignore[union-attr]

    @task(name="awhere", registry=reg)
    async def awhere(i: int) -> str:
        return threading.current_thread().name

    with worker_factory() as worker:
        wait_for(lambda: worker.fetcher.threaded, 10, "the fetcher to run, waiting on threads")
        for i in range(3):
            wait_for(lambda: worker.fetcher.waiting and waits, 10, "a wait on a thread")
            wait, token = client.result(client.enqueue(where, i), timeout=10)
            assert wait == token and token in waits, "run inside the wait whose fetch leased it"
        wait_for(lambda: worker.fetcher.waiting, 10, "a wait on a thread")
        assert not client.result(client.enqueue(awhere, 9), timeout=10).startswith("tq-sync-")


def test_the_fetch_waits_in_redis_behind_the_blocking_wait(client, reg, worker_factory):
    @task(name="f", registry=reg)
    def f(i: int) -> str:
        return current_job().token  # type: ignore[union-attr]

    def queued_behind_a_wait() -> bool:
        return any(c["cmd"] == "blpop" and int(c["qbuf"]) > 0 for c in client.redis.client_list())

    with worker_factory() as worker:
        # The long wait, on the loop (the first, on a thread, ends after fetcher.HOT_WAIT).
        wait_for(lambda: worker.fetcher.waiting and not worker.fetcher.hot, 10, "the idle wait")
        assert worker.fetcher.pipelined
        wait_for(queued_behind_a_wait, 10, "a BLPOP with a command queued behind it")
        waiting = f"{worker.name}:{worker.fetcher.fetches}"  # the token of the fetch in Redis
        # The job is leased by the fetch that waited behind the wait, not by a later one.
        assert client.result(client.enqueue(f, 7), timeout=10) == waiting


def test_stop_ends_the_idle_wait_through_the_halt_list(client, reg, worker_factory):
    """stop() pushes two items to the worker's halt list: the wait pops one and ends before its
    10 s block (the deadline below is shorter), the fetch behind it finds and drops the other."""
    with worker_factory() as worker:
        wait_for(lambda: worker.fetcher.waiting, 10, "the idle wait")
        fetches = worker.fetcher.fetches
        worker.stop()
        wait_for(lambda: not worker.fetcher.waiting, 5, "the wait to end")
        wait_for(lambda: not client.redis.exists(client.keys.halt(worker.name)), 5,
                 "the fetch behind the wait to drop the halt list")  # fmt: skip
        assert worker.fetcher.fetches == fetches and worker.fetcher.given_back == 0


def test_a_job_leased_as_the_worker_quiets_goes_back_unstarted(client, reg, worker_factory):
    """The fetch sent behind an idle wait can lease a job in the instant between quiet and the
    worker's halt reaching Redis. Here the job always wins that race (it is enqueued where the
    halt would be pushed): it goes back to its queue unstarted, with no attempt spent, and runs
    once after the worker resumes."""
    ran: list[int] = []

    @task(name="r", registry=reg)
    def r(i: int) -> int:
        ran.append(i)
        return i

    with worker_factory() as worker:
        assert client.result(client.enqueue(r, 0), timeout=10) == 0
        wait_for(lambda: worker.fetcher.waiting, 10, "the idle wait")
        job: dict[str, str] = {}

        async def job_first(halt_key: str) -> None:
            job["id"] = client.enqueue(r, 1)

        worker.fetcher._push_halt = job_first  # type: ignore[method-assign]
        worker._loop.call_soon_threadsafe(worker.set_quiet, True)  # type: ignore[union-attr]
        wait_for(lambda: worker.fetcher.given_back == 1, 10, "the leased job to go back")
        assert client.status(job["id"]).state == "queued" and ran == [0]
        assert client.redis.hget(client.keys.job(job["id"]), "attempts") == b"0"
        worker._loop.call_soon_threadsafe(worker.set_quiet, False)  # type: ignore[union-attr]
        assert client.result(job["id"], timeout=10) == 1 and ran == [0, 1]


def test_a_script_flush_during_the_idle_wait_loses_nothing(client, reg, worker_factory):
    """The fetch queued behind the wait meets NOSCRIPT (a restarted or flushed Redis): the
    worker loads the script and fetches again; the job that woke it runs."""

    @task(name="g", registry=reg)
    def g(i: int) -> int:
        return i

    with worker_factory() as worker:
        wait_for(lambda: worker.fetcher.waiting, 10, "the idle wait")
        client.redis.script_flush()
        assert client.result(client.enqueue(g, 5), timeout=10) == 5
