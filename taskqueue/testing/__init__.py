"""Test your tasks the way taskqueue tests itself: against a real redis-server.

    from taskqueue.testing import RedisServer, assert_conserved

The pytest plugin (``taskqueue.testing.plugin``, loaded automatically once taskqueue is
installed) provides the fixtures ``redis_server`` (one server per session), ``redis_url`` (a
clean database for each test), ``tq`` (a TaskQueue on it) and ``redis_factory`` (start your own,
e.g. with AOF, to SIGKILL and restart).
"""

from .conservation import assert_conserved, job_places
from .server import RedisServer, find_redis_server, free_port

__all__ = ["RedisServer", "assert_conserved", "find_redis_server", "free_port", "job_places"]
