"""taskqueue: the benchmark task (async: the worker runs it on its event loop, no thread hop)."""

from benchtask import run_async

from taskqueue import task


@task(name="bench.incr_async")
async def incr(x):
    await run_async(x)
