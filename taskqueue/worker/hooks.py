"""Extension points of a ``Worker``: a base class whose methods are documented no-ops.

The pre-fork child (``master/child.py``) subclasses it to report held jobs to its master; other
observers (metrics, tests) do the same instead of overriding the worker's own methods.
Hooks run on the worker's event loop thread and must not block.
"""

from __future__ import annotations

from .running import Running


class WorkerHooks:
    """Called by a worker as jobs move through it. Every method does nothing here."""

    def job_started(self, r: Running) -> None:
        """A fetched job now holds a slot (and stays held until ``job_settled``)."""

    def code_started(self, r: Running) -> None:
        """The job's code starts running now (a suspect only after it waited to run alone)."""

    def job_settled(self, r: Running) -> None:
        """The job's outcome is recorded in Redis, or it was abandoned: no longer held."""
