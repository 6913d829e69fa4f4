"""The pipe between the master and one worker process: newline-delimited JSON, never blocking.

Duties:
1. ``send`` queues one message and writes what the pipe takes now; the rest waits for ``flush``
   (a stopped reader must never block the writer). Past ``MAX_PENDING`` bytes, new messages
   are dropped and ``send`` returns False (status reports are snapshots: the next one wins).
2. ``read`` returns every complete message available now, and None once the other end closed.

Messages, worker -> master: ``{"t": "up"}`` once booted; ``{"t": "st", "jobs": [[id, queue,
token, task, started_epoch_s, timeout_ms], ...], "p": processed, "b": busy, "o": overdue_s}``
every heartbeat and whenever the held jobs change. Master -> worker: ``{"t": "lost", "ids":
[...]}``, ``{"t": "cancel", "ids": [...]}``, ``{"t": "quiet", "on": bool}``.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

MAX_PENDING = 1 << 20


class Channel:
    """One direction of a pipe end pair: ``rfd`` to read from, ``wfd`` to write to."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._out = b""
        self._in = b""

    def send(self, msg: dict[str, Any]) -> bool:
        if len(self._out) > MAX_PENDING:
            self.flush()
            return False
        self._out += json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        self.flush()
        return True

    @property
    def pending(self) -> bool:
        return bool(self._out)

    def flush(self) -> None:
        while self._out:
            try:
                n = os.write(self.wfd, self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the reader is gone (EPIPE): nothing more will be read
                self._out = b""
                return
            self._out = self._out[n:]

    def read(self) -> list[dict[str, Any]] | None:
        """Complete messages available now; None when the writer closed its end."""
        closed = False
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                closed = True
                break
            self._in += chunk
        *lines, self._in = self._in.split(b"\n")
        msgs = []
        for line in lines:
            try:
                msgs.append(json.loads(line))
            except ValueError:
                continue
        return None if closed and not msgs else msgs

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
