"""The worker package: ``Worker`` (one process, one event loop) and its parts.

``core.Worker`` joins a fetcher, an executor, an acker and a lease keeper; ``WorkerHooks`` is
how other code (the pre-fork child, metrics) observes jobs moving through it.
"""

from .core import Worker
from .hooks import WorkerHooks
from .running import Running

__all__ = ["Running", "Worker", "WorkerHooks"]
