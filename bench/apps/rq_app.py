"""RQ: plain function; workers are SimpleWorker (no fork per job) in a worker-pool."""

from benchtask import run_sync


def incr(x):
    run_sync(x)
