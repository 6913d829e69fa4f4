"""Validation of job and task options: one clear error naming the option and the value.

Pure functions, used by ``@task`` (``TaskOptions``) and at enqueue (``jobs.make_job``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from .errors import InvalidOption

#: Longest time limit, delay and result TTL accepted (s): ten years.
MAX_SECONDS = 10 * 365 * 86400.0
MAX_RETRIES = 10_000
MAX_KEY_LENGTH = 512


def _where(task: str) -> str:
    return f" of task {task!r}" if task else ""


def seconds(name: str, value: Any, task: str = "", *, zero_ok: bool = False) -> float:
    """A finite, positive number of seconds (a timedelta is accepted too)."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOption(f"{name}{_where(task)} must be a number of seconds, got "
                            f"{type(value).__name__} {value!r}")  # fmt: skip
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        limit = "0 or more" if zero_ok else "more than 0"
        raise InvalidOption(f"{name}{_where(task)} must be {limit} seconds, got {value!r}")
    if value > MAX_SECONDS:
        raise InvalidOption(f"{name}{_where(task)} must be at most {MAX_SECONDS:g} seconds, "
                            f"got {value!r}")  # fmt: skip
    return float(value)


def timeout(value: Any, task: str = "") -> float | None:
    """None (no limit) or a positive number of seconds."""
    return None if value is None else seconds("timeout", value, task)


def retries(value: Any, task: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOption(f"max_retries{_where(task)} must be an integer, got "
                            f"{type(value).__name__} {value!r}")  # fmt: skip
    if not 0 <= value <= MAX_RETRIES:
        raise InvalidOption(f"max_retries{_where(task)} must be 0..{MAX_RETRIES}, got {value}")
    return value


def key(value: Any) -> str | None:
    """An idempotency key: None (no deduplication) or a non-empty string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOption(f"idempotency key must be a string, got {type(value).__name__} "
                            f"{value!r}; use str(...) if you mean it")  # fmt: skip
    if not value:
        raise InvalidOption("idempotency key must not be empty (pass key=None for no key)")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidOption(f"idempotency key is {len(value)} characters, over {MAX_KEY_LENGTH}")
    return value


def at(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    raise InvalidOption(f"at must be a datetime, got {type(value).__name__} {value!r}")


def task_options(opts: Any, task: str = "") -> None:
    """Check every field of a ``TaskOptions`` (called when a task is declared)."""
    timeout(opts.timeout, task)
    retries(opts.max_retries, task)
    seconds("result_ttl", opts.result_ttl, task)
    seconds("retry_backoff", opts.retry_backoff, task, zero_ok=True)
    seconds("retry_backoff_max", opts.retry_backoff_max, task, zero_ok=True)
    if not isinstance(opts.dead_letter, bool):
        raise InvalidOption(f"dead_letter{_where(task)} must be True or False")
    if not isinstance(opts.queue, str):
        raise InvalidOption(f"queue{_where(task)} must be a string, got {opts.queue!r}")
