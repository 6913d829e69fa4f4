"""The master's signal table (DESIGN.md, "Signals of the master") and its race-free delivery.

Duties:
1. ``install``: a non-blocking pipe handed to ``signal.set_wakeup_fd``; the C-level handler
   writes each signal's number into it, and the Python-level handler does nothing at all (no
   logging, no locks), so a signal can never interrupt the master half-way through anything.
2. ``pending``: the signal numbers waiting in the pipe, read by the loop.
3. ``dispatch``: map one signal to the master operation it stands for.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from .child import reopen_logs

if TYPE_CHECKING:
    from .arbiter import Arbiter

log = logging.getLogger("taskqueue.master")
HANDLED = ("HUP", "INT", "QUIT", "TERM", "TTIN", "TTOU", "TSTP", "CONT", "USR1", "USR2", "CHLD")


def _record(signum: int, frame: Any) -> None:
    """Python-level handler: nothing to do, the C handler already wrote to the wakeup fd."""


def install() -> tuple[int, int]:
    """Route every handled signal into a new pipe; return its (read, write) fds."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for name in HANDLED:
        signal.signal(getattr(signal, "SIG" + name), _record)
    return r, w


def pending(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except (BlockingIOError, InterruptedError):
        return b""


def dispatch(m: Arbiter, signum: int) -> None:
    sig = signal.Signals(signum)
    if sig == signal.SIGCHLD:
        return  # it only woke the loop; reaping happens there
    log.info("received %s", sig.name)
    if sig == signal.SIGTERM:
        m.stop(False, "SIGTERM")
    elif sig == signal.SIGINT:
        m.ints += 1
        m.stop(m.ints > 1, "SIGINT" if m.ints == 1 else "second SIGINT")
    elif sig == signal.SIGQUIT:
        m.stop(True, "SIGQUIT")
    elif sig == signal.SIGHUP:
        m.reload("SIGHUP")
    elif sig == signal.SIGTTIN:
        m.scale(m.desired + 1, "SIGTTIN")
    elif sig == signal.SIGTTOU:
        m.scale(max(1, m.desired - 1), "SIGTTOU")
    elif sig == signal.SIGTSTP:
        m.set_quiet(True, "SIGTSTP")
    elif sig == signal.SIGCONT:
        if m.quiet:  # a CONT after a SIGSTOP of the master is not a resume request
            m.set_quiet(False, "SIGCONT")
    elif sig == signal.SIGUSR1:
        reopen_logs()
        m.broadcast_signal(signal.SIGUSR1)
    elif sig == signal.SIGUSR2:
        m.dump("SIGUSR2")
