"""taskqueue: the benchmark task as a plain ``def`` with a sync redis client (what users write)."""

from benchtask import run_sync

from taskqueue import task


@task(name="bench.incr")
def incr(x):
    run_sync(x)
