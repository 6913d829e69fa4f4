"""A leased job that a worker holds, from its fetch until its outcome is recorded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..broker import Leased


@dataclass(slots=True)
class Running:
    """A leased job this worker holds, from fetch until its ack or fail is recorded."""

    job: Leased
    started: float
    task: asyncio.Task | None = None
    lost: bool = False
    #: Thread running this job's sync code while it has a time limit (for the soft limit).
    thread: int | None = None
    cancel_requested: bool = False
    #: Its code is running now (False while a suspect waits to run alone, and once finished).
    code: bool = False
    #: Run by a sync processor thread (``task`` is then a plain future, done when settled).
    in_thread: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
