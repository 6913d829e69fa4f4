"""Giving memory back to the OS once a process goes idle.

Duties:
1. ``trim()``: ask glibc to return the free pages of every malloc arena (``malloc_trim(0)``,
   which also releases whole free pages inside the heap, not only its top). A worker calls it
   when its last sync thread exits: the threads' arenas and the buffers of a busy spell are then
   free but still resident, and counted in the process's private memory (USS).
2. Be a no-op where there is no glibc (macOS, musl): the call is looked up once, at import, so
   in the pre-fork master and shared by its workers.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return freed heap memory to the OS; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
