"""arq: async function; one worker per process, ``max_jobs`` = BENCH_CONCURRENCY."""

from arq.connections import RedisSettings
from benchtask import concurrency, run_async, url

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"},
           "loggers": {"arq": {"level": "WARNING"}}}  # fmt: skip


async def incr(ctx, x):
    await run_async(x)


class WorkerSettings:
    functions = [incr]
    redis_settings = RedisSettings.from_dsn(url())
    max_jobs = concurrency()
    poll_delay = 0.05  # default 0.5 s caps a process at ~200 jobs/s (100 read per poll)
    handle_signals = True
