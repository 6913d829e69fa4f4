"""A task module whose ``worker_boot`` hook fails: every worker process dies while booting."""

from taskqueue import task


@task(name="bootfail.noop")
def noop() -> None:
    return None


def worker_boot() -> None:
    raise RuntimeError("cannot open the database (on purpose)")
