"""Test your tasks the way taskqueue tests itself: against a real redis-server.

    from taskqueue.testing import RedisServer, assert_conserved

The pytest plugin (``taskqueue.testing.plugin``, loaded automatically once taskqueue is
installed) provides the fixtures ``redis_server`` (one server per session), ``redis_url`` (a
clean database for each test), ``tq`` (a TaskQueue on it) and ``redis_factory`` (start your own,
e.g. with AOF, to SIGKILL and restart) and ``ledger`` (execution accounting for fault tests:
every run of a task recorded outside Redis, and ``check_ledger`` to prove nothing ran twice or
got lost; see ``taskqueue.testing.ledger``).

Beyond one server: ``LocalCluster`` (3 primaries with replicas; fixtures ``redis_cluster`` and
``cluster_url``), ``LocalSentinel`` (a primary, a replica and 3 Sentinels; ``redis_sentinel`` and
``sentinel_url``) and a TLS server with certificates made by ``make_certs`` (``tls_server``,
``tls_certs``). All run from the redis-server binary on free loopback ports.
"""

from .cluster import LocalCluster
from .conservation import assert_conserved, job_places, tombstone_problems
from .ledger import Ledger, check_ledger, recorded
from .sentinel import LocalSentinel
from .server import RedisServer, find_redis_server, free_port
from .tls import TlsFiles, make_certs

__all__ = [
    "Ledger",
    "LocalCluster",
    "LocalSentinel",
    "RedisServer",
    "TlsFiles",
    "assert_conserved",
    "check_ledger",
    "find_redis_server",
    "free_port",
    "job_places",
    "make_certs",
    "recorded",
    "tombstone_problems",
    "wait_for",
    "wait_for_async",
]


def _poller(cond, timeout: float, what: str):  # noqa: ANN001, ANN202
    """One poll of ``cond``: its value when truthy, else None; AssertionError past the deadline."""
    import time

    end = time.monotonic() + timeout

    def poll():  # noqa: ANN202
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        return None

    return poll


def wait_for(cond, timeout: float = 15.0, what: str = "condition"):  # noqa: ANN001, ANN201
    """Poll ``cond`` (every 10 ms) until it returns something truthy, and return that; raise
    AssertionError naming ``what`` after ``timeout`` seconds. For tests: wait on a condition
    with a deadline instead of sleeping."""
    import time

    poll = _poller(cond, timeout, what)
    while (value := poll()) is None:
        time.sleep(0.01)
    return value


async def wait_for_async(cond, timeout: float = 15.0, what: str = "condition"):  # noqa: ANN001, ANN201
    """``wait_for`` inside an event loop: poll ``cond`` every 10 ms without blocking the loop."""
    import asyncio

    poll = _poller(cond, timeout, what)
    while (value := poll()) is None:
        await asyncio.sleep(0.01)
    return value
