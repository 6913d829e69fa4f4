"""Producer side of each library, and how to start its workers.

Every adapter offers: ``submit(x)`` one job per call; ``enqueue_seq(xs)`` a loop of single calls;
``enqueue_bulk(xs)`` the library's bulk API (``bulk_api`` names it, None if there is none);
``paced(rate, n)`` n jobs at a steady rate whose argument is the enqueue time in µs;
``worker_cmds(procs, conc)`` the command line(s) of the worker tree.
Library imports happen inside the adapters, so ``--only taskqueue`` needs no peer installed.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))


def _bin(name: str) -> str:
    """A console script of the running interpreter's environment."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _stamp() -> int:
    return time.time_ns() // 1000


class Adapter:
    name = "?"
    dist = "?"
    bulk_api: str | None = None
    #: How the workers are configured (filled by ``describe``).
    concurrency_note = ""

    def __init__(self, url: str) -> None:
        self.url = url

    def version(self) -> str:
        return _version(self.dist)

    def describe(self, procs: int, conc: int) -> str:
        return self.concurrency_note.format(procs=procs, conc=conc)

    def submit(self, x: object) -> None:
        raise NotImplementedError

    def enqueue_seq(self, xs: list) -> None:
        submit = self.submit
        for x in xs:
            submit(x)

    def enqueue_bulk(self, xs: list) -> None:
        raise NotImplementedError

    def prefill(self, xs: list) -> None:
        """Queue jobs as fast as this library allows (untimed preparation)."""
        if self.bulk_api:
            for i in range(0, len(xs), 5000):
                self.enqueue_bulk(xs[i : i + 5000])
        else:
            self.enqueue_seq(xs)

    def paced(self, rate: float, n: int) -> None:
        interval = 1.0 / rate
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.submit(_stamp())

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        raise NotImplementedError

    def worker_env(self, conc: int) -> dict[str, str]:
        env = dict(os.environ)
        env["BENCH_REDIS_URL"] = self.url
        env["BENCH_CONCURRENCY"] = str(conc)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["BENCH_APPS"] = str(APPS)
        return env

    def close(self) -> None:
        pass


class AsyncAdapter(Adapter):
    """Libraries whose producer API is asyncio: each measured loop runs inside one coroutine."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.aopen())

    async def aopen(self) -> None:
        raise NotImplementedError

    async def asubmit(self, x: object) -> None:
        raise NotImplementedError

    def submit(self, x: object) -> None:
        self.loop.run_until_complete(self.asubmit(x))

    def enqueue_seq(self, xs: list) -> None:
        async def go() -> None:
            submit = self.asubmit
            for x in xs:
                await submit(x)

        self.loop.run_until_complete(go())

    def prefill(self, xs: list) -> None:
        async def go() -> None:
            for i in range(0, len(xs), 20):  # a few in flight: arq's pool caps connections
                await asyncio.gather(*(self.asubmit(x) for x in xs[i : i + 20]))

        self.loop.run_until_complete(go())

    def paced(self, rate: float, n: int) -> None:
        async def go() -> None:
            interval = 1.0 / rate
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.asubmit(_stamp())

        self.loop.run_until_complete(go())

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        self.loop.run_until_complete(self.aclose())
        self.loop.close()


# -- taskqueue ---------------------------------------------------------------------------------
def task_worker_cli_available() -> bool:
    """True once the pre-fork master CLI (``task-worker worker``) is importable and answers."""
    try:
        res = subprocess.run(
            [sys.executable, "-m", "taskqueue.cli.worker", "worker", "--help"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


class TaskQueueAdapter(Adapter):
    """taskqueue with a ``def`` task and a sync redis client: the headline (what users write)."""

    name = "taskqueue"
    dist = "taskqueue"
    bulk_api = "enqueue_many"
    #: The app module that registers the task, and what a slot runs.
    app = "tq_sync_app"
    kind = "sync task (def)"

    def __init__(self, url: str, *, cli: bool | None = None) -> None:
        super().__init__(url)
        import importlib

        from taskqueue import TaskQueue

        self.task = importlib.import_module(self.app).incr
        self.tq = TaskQueue(url)
        self.cli = task_worker_cli_available() if cli is None else cli
        if self.cli:
            self.concurrency_note = (
                "task-worker pre-fork master + {procs} worker processes x {conc} slots, "
                + self.kind
            )
        else:
            self.concurrency_note = (
                f"{{procs}} Worker processes (no master) x {{conc}} slots, {self.kind}"
            )

    def submit(self, x: object) -> None:
        self.tq.enqueue(self.task, x)

    def enqueue_seq(self, xs: list) -> None:
        enqueue, task = self.tq.enqueue, self.task
        for x in xs:
            enqueue(task, x)

    def enqueue_bulk(self, xs: list) -> None:
        task = self.task
        self.tq.enqueue_many([(task, (x,), None) for x in xs])

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        if self.cli:
            return [[sys.executable, "-m", "taskqueue.cli.worker", "worker", "-w", str(procs),
                     "--import", self.app, "-q", "default", "--max-concurrent-tasks", str(conc),
                     "--log-level", "warning", "--redis-url", self.url]]  # fmt: skip
        script = str(APPS / "tq_worker.py")
        return [[sys.executable, script, str(conc), self.app] for _ in range(procs)]

    def worker_env(self, conc: int) -> dict[str, str]:
        env = super().worker_env(conc)
        env["REDIS_URL"] = self.url
        env["TASKQUEUE_REDIS_URL"] = self.url
        return env

    def close(self) -> None:
        self.tq.close()


class TaskQueueAsyncAdapter(TaskQueueAdapter):
    """taskqueue with an ``async def`` task (redis-py asyncio client) on the worker's loop."""

    name = "taskqueue-async"
    app = "tq_app"
    kind = "async task (async def)"


# -- Celery ------------------------------------------------------------------------------------
class CeleryAdapter(Adapter):
    name = "celery"
    dist = "celery"
    bulk_api = "group().apply_async()"
    concurrency_note = (
        "prefork pool, {procs} child processes (+ main process); no result backend; "
        "--without-gossip/mingle/heartbeat"
    )

    def __init__(self, url: str) -> None:
        super().__init__(url)
        os.environ["BENCH_REDIS_URL"] = url
        import celery_app

        self.app = celery_app.app
        self.task = celery_app.incr

    def submit(self, x: object) -> None:
        self.task.apply_async((x,))

    def enqueue_seq(self, xs: list) -> None:
        apply = self.task.apply_async
        for x in xs:
            apply((x,))

    def enqueue_bulk(self, xs: list) -> None:
        from celery import group

        group(self.task.s(x) for x in xs).apply_async()

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        return [[_bin("celery"), "-A", "celery_app", "worker", "-P", "prefork", "-c", str(procs),
                 "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-Q", "celery"]]  # fmt: skip

    def close(self) -> None:
        self.app.close()


# -- RQ ----------------------------------------------------------------------------------------
class RQAdapter(Adapter):
    name = "rq"
    dist = "rq"
    bulk_api = "Queue.enqueue_many"
    concurrency_note = "rq worker-pool, {procs} SimpleWorker processes (no fork per job)"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        import redis
        import rq_app
        from rq import Queue

        self.conn = redis.Redis.from_url(url)
        self.queue = Queue("default", connection=self.conn)
        self.func = rq_app.incr

    def submit(self, x: object) -> None:
        self.queue.enqueue(self.func, x)

    def enqueue_seq(self, xs: list) -> None:
        enqueue, func = self.queue.enqueue, self.func
        for x in xs:
            enqueue(func, x)

    def enqueue_bulk(self, xs: list) -> None:
        from rq import Queue

        func = self.func
        self.queue.enqueue_many([Queue.prepare_data(func, (x,)) for x in xs])

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        return [[_bin("rq"), "worker-pool", "-n", str(procs), "-w", "rq.worker.SimpleWorker",
                 "-u", self.url, "-l", "WARNING", "-P", str(APPS), "default"]]  # fmt: skip

    def close(self) -> None:
        self.conn.close()


# -- Dramatiq ----------------------------------------------------------------------------------
class DramatiqAdapter(Adapter):
    name = "dramatiq"
    dist = "dramatiq"
    bulk_api = "group().run() (one enqueue per message)"
    concurrency_note = "{procs} worker processes x {conc} threads; RedisBroker, default middleware"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        os.environ["BENCH_REDIS_URL"] = url
        import dramatiq_app

        self.actor = dramatiq_app.incr
        self.broker = dramatiq_app.broker

    def submit(self, x: object) -> None:
        self.actor.send(x)

    def enqueue_seq(self, xs: list) -> None:
        send = self.actor.send
        for x in xs:
            send(x)

    def enqueue_bulk(self, xs: list) -> None:
        from dramatiq import group

        group(self.actor.message(x) for x in xs).run()

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        return [[_bin("dramatiq"), "dramatiq_app", "-p", str(procs), "-t", str(conc),
                 "-P", str(APPS), "--skip-logging"]]  # fmt: skip

    def close(self) -> None:
        self.broker.close()


# -- arq ---------------------------------------------------------------------------------------
class ArqAdapter(AsyncAdapter):
    name = "arq"
    dist = "arq"
    concurrency_note = (
        "{procs} worker processes x max_jobs={conc}; poll_delay 0.05 s (default 0.5 s)"
    )

    async def aopen(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.pool = await create_pool(RedisSettings.from_dsn(self.url))

    async def asubmit(self, x: object) -> None:
        await self.pool.enqueue_job("incr", x)

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        cmd = [_bin("arq"), "arq_app.WorkerSettings", "--custom-log-dict", "arq_app.LOGGING"]
        return [list(cmd) for _ in range(procs)]

    async def aclose(self) -> None:
        await self.pool.aclose()


# -- Huey --------------------------------------------------------------------------------------
class HueyAdapter(Adapter):
    name = "huey"
    dist = "huey"
    concurrency_note = "huey_consumer -k process -w {procs}; RedisHuey (blocking BRPOP)"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        os.environ["BENCH_REDIS_URL"] = url
        import huey_app

        self.task = huey_app.incr

    def submit(self, x: object) -> None:
        self.task(x)

    def enqueue_seq(self, xs: list) -> None:
        task = self.task
        for x in xs:
            task(x)

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        return [[_bin("huey_consumer"), "huey_app.huey", "-k", "process", "-w", str(procs),
                 "-q"]]  # fmt: skip


# -- SAQ ---------------------------------------------------------------------------------------
class SaqAdapter(AsyncAdapter):
    name = "saq"
    dist = "saq"
    concurrency_note = "saq --workers {procs}, concurrency={conc} per process"

    async def aopen(self) -> None:
        from saq import Queue

        self.queue = Queue.from_url(self.url)
        await self.queue.connect()

    async def asubmit(self, x: object) -> None:
        await self.queue.enqueue("incr", x=x)

    def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
        return [[_bin("saq"), "saq_app.settings", "--workers", str(procs), "--quiet"]]

    async def aclose(self) -> None:
        await self.queue.disconnect()


ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a
    for a in (
        TaskQueueAdapter,
        TaskQueueAsyncAdapter,
        CeleryAdapter,
        RQAdapter,
        DramatiqAdapter,
        ArqAdapter,
        HueyAdapter,
        SaqAdapter,
    )
}
