"""The pidfile: written atomically, refused while another live master holds it, removed on exit
only if it still names us.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


class PidfileError(Exception):
    pass


def _holder(path: str) -> int | None:
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def write(path: str) -> None:
    """Write our pid to ``path``; raise PidfileError if a live process already holds it."""
    other = _holder(path)
    if other is not None:
        raise PidfileError(f"pidfile {path} names process {other}, which is still running")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pid-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(path: str) -> None:
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        if int(f.read().strip()) != os.getpid():
            return
    with contextlib.suppress(OSError):
        os.unlink(path)
