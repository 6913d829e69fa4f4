"""Tombstones: how the readers of queue lengths leave out cancelled jobs still in a ready list.

Cancelling a waiting job is O(1): ``cancel.lua`` finishes the record as cancelled and leaves the
id in its ready list, counting it in the ``tombs`` hash (queue -> tombstones). ``fetch.lua`` and
``purge.lua`` drop a tombstone unrun when they pop it, and lower the count. So the number of jobs
really waiting in a queue is the list's length minus its count; every reader (``TaskQueue``'s
lengths, tqctl, the HTTP API, Prometheus, the autoscaler) goes through ``waiting``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def waiting(ready_len: int, tombs: Mapping[Any, Any] | None, queue: str) -> int:
    """Jobs waiting in ``queue``: the ready list's length less its tombstones (``HGETALL tombs``,
    bytes or str keys), never below 0."""
    if not tombs:
        return int(ready_len)
    count = tombs.get(queue.encode(), tombs.get(queue, 0))
    return max(0, int(ready_len) - int(count or 0))
