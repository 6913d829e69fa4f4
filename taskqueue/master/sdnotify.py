"""systemd notifications (sd_notify), spoken directly over the NOTIFY_SOCKET datagram socket.

Duties:
1. Read ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket) and ``WATCHDOG_USEC``
   (honoured when ``WATCHDOG_PID`` is unset or ours), then remove them from the environment
   so worker processes never speak for the service (NotifyAccess=main).
2. ``ready``, ``reloading`` (with MONOTONIC_USEC), ``stopping``, ``status``, ``extend_timeout``;
   ``watchdog`` sends WATCHDOG=1 at most every half watchdog interval.
Without NOTIFY_SOCKET every method does nothing. Send errors are ignored: systemd going away
must never stop the master.
"""

from __future__ import annotations

import os
import socket
import time


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address: str | None = env.pop("NOTIFY_SOCKET", None) or None
        usec = env.pop("WATCHDOG_USEC", None)
        wd_pid = env.pop("WATCHDOG_PID", None)
        self.watchdog_interval: float | None = None
        if usec and usec.isdigit() and int(usec) > 0 and wd_pid in (None, str(os.getpid())):
            self.watchdog_interval = int(usec) / 2e6
        self._sock: socket.socket | None = None
        self._last_watchdog = 0.0
        self._last_status = ""
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
            if self.address.startswith("@"):
                self.address = "\0" + self.address[1:]

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        if self._sock is None or self.address is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        if text != self._last_status:
            self._last_status = text
            self.send(f"STATUS={text}")

    def extend_timeout(self, seconds: float) -> None:
        self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def watchdog(self, now: float | None = None) -> None:
        if self.watchdog_interval is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_watchdog >= self.watchdog_interval:
            self._last_watchdog = now
            self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
