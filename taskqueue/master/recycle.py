"""Deciding when a worker process must go: recycling, hung workers, runaway sync tasks.

Duties (``Recycler.check``, run by the master on every loop iteration):
1. A worker past its kill deadline (retiring or stopping too long) is killed; its jobs are
   released gracefully first (no stall counted: the master chose to kill it).
2. A worker silent for longer than ``hung_timeout`` (SIGSTOPped, deadlocked) is killed with its
   process group; its jobs are released as stalled when it is reaped.
3. A worker that has run ``max_tasks`` jobs, or whose USS passed ``max_memory_mib``, is retired:
   TERM, it finishes its in-flight jobs and exits, and a fresh one takes its slot at once.
4. A worker whose sync call ran ``HARD_LIMIT_GRACE`` seconds past its job's time limit (the
   job was already failed with a timeout) is retired so the runaway thread dies with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .handle import WorkerHandle

log = logging.getLogger("taskqueue.master")
MIB = 1024 * 1024
#: Seconds a sync call may run past its job's time limit before its process is replaced.
HARD_LIMIT_GRACE = 2.0


class Recycler:
    def __init__(self, *, max_tasks: int, max_memory_mib: int, hung_timeout: float,
                 grace: float) -> None:  # fmt: skip
        self.max_tasks = max_tasks
        self.max_memory = max_memory_mib * MIB
        self.hung_timeout = hung_timeout
        self.grace = grace

    def check(self, workers: Iterable[WorkerHandle], now: float,
              kill: Callable[[WorkerHandle, bool], None]) -> None:  # fmt: skip
        """``kill(worker, graceful)`` kills it; graceful releases its jobs without a stall."""
        for w in workers:
            if w.killed:
                continue
            if w.kill_at is not None and now >= w.kill_at:
                log.warning("worker %d (pid %d) still alive at its deadline (%s); killing it",
                            w.index, w.pid, w.reason or "stopping")  # fmt: skip
                kill(w, True)
            elif self.hung_timeout and now - w.last_beat > self.hung_timeout:
                log.error("worker %d (pid %d) sent no heartbeat for %.1fs; killing it",
                          w.index, w.pid, now - w.last_beat)  # fmt: skip
                kill(w, False)
            elif w.retiring:
                continue
            elif self.max_tasks and w.processed >= self.max_tasks:
                self._retire(w, f"ran {w.processed} jobs (max_tasks_per_child)", now)
            elif self.max_memory and w.mem[1] > self.max_memory:
                self._retire(w, f"uses {w.mem[1] / MIB:.0f} MiB USS (max_memory_per_child)", now)
            elif w.overdue > HARD_LIMIT_GRACE:
                self._retire(w, f"a sync task ran {w.overdue:.1f}s past its time limit", now)

    def _retire(self, w: WorkerHandle, reason: str, now: float) -> None:
        log.info("recycling worker %d (pid %d): %s", w.index, w.pid, reason)
        w.retire(reason, now + self.grace + 2.0)
