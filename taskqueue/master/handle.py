"""The master's record of one worker process: what it reported and what the master decided.

Duties:
1. Hold the pid, slot index, generation, channel and lifecycle flags of one worker.
2. Apply the worker's reports (``on_message``): booted, held jobs, processed, busy, overdue.
3. Send it signals (its whole process group for kills) and messages, treating ESRCH as gone.
4. Describe it for the status record (``describe``, with psutil figures).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from .channel import Channel


@dataclass
class WorkerHandle:
    pid: int
    index: int
    generation: int
    channel: Channel
    slots: int
    spawned: float = field(default_factory=time.monotonic)
    last_beat: float = field(default_factory=time.monotonic)
    up: bool = False
    retiring: bool = False
    kill_at: float | None = None
    killed: bool = False
    reason: str = ""
    jobs: list[list[Any]] = field(default_factory=list)
    processed: int = 0
    busy: int = 0
    overdue: float = 0.0
    proc: psutil.Process | None = None
    mem: tuple[int, int] = (0, 0)
    cpu: float = 0.0

    def on_message(self, msg: dict[str, Any]) -> bool:
        """Apply one report; return True when it is the "booted" one."""
        self.last_beat = time.monotonic()
        kind = msg.get("t")
        if kind == "up":
            self.up = True
            return True
        if kind == "st":
            self.jobs = msg.get("jobs", [])
            self.processed = msg.get("p", 0)
            self.busy = msg.get("b", 0)
            self.overdue = msg.get("o", 0.0)
        return False

    def triples(self, running: bool | None = None) -> list[tuple[str, str, str]]:
        """(id, queue, token) of the jobs it reported; ``running`` True/False: only those whose
        code was running / was not (a suspect waiting to run alone, a result not yet acked)."""
        return [(j[0], j[1], j[2]) for j in self.jobs
                if running is None or bool(j[6] if len(j) > 6 else 1) == running]  # fmt: skip

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the worker and everything it started (it leads its own process group)."""
        self.killed = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.send_signal(signal.SIGKILL)

    def retire(self, reason: str, deadline: float, sig: int = signal.SIGTERM) -> None:
        """Ask it to finish its jobs and exit (TERM); kill it at ``deadline`` if still alive."""
        if not self.retiring:
            self.retiring = True
            self.reason = reason
        self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)
        self.send_signal(sig)

    def sample(self) -> None:
        """Refresh memory (RSS, USS) and CPU figures."""
        try:
            if self.proc is None:
                self.proc = psutil.Process(self.pid)
                self.proc.cpu_percent(None)
            info = self.proc.memory_full_info()
            self.mem = (info.rss, getattr(info, "uss", info.rss))
            self.cpu = self.proc.cpu_percent(None)
        except (psutil.Error, OSError):
            pass

    @property
    def state(self) -> str:
        if self.killed:
            return "killed"
        if self.retiring:
            return "retiring"
        return "running" if self.up else "booting"

    def describe(self) -> dict[str, Any]:
        now = time.time()
        return {
            "index": self.index,
            "pid": self.pid,
            "generation": self.generation,
            "started": round(time.time() - (time.monotonic() - self.spawned), 1),
            "state": self.state,
            "rss": self.mem[0],
            "uss": self.mem[1],
            "cpu": self.cpu,
            "busy": self.busy,
            "slots": self.slots,
            "processed": self.processed,
            "beat_s": round(time.monotonic() - self.last_beat, 3),
            "jobs": [
                {"id": j[0], "task": j[3], "running_s": round(now - j[4], 3)} for j in self.jobs
            ],  # fmt: skip
        }
