"""When a schedule fires: the next slot after a moment, for a cron expression or an interval.

Duties:
1. ``Cron``: a 5-field cron expression in an IANA timezone, evaluated by cronsim (Debian cron's
   rules at DST changes: a fixed-time job in the skipped hour runs once at the first valid
   minute after it, and once, not twice, in the repeated hour) with ``zoneinfo``.
2. ``Every``: a fixed interval, its slots aligned on the Unix epoch, so every master computes
   the same slots without sharing an anchor (``every = 30 s`` fires at :00 and :30).
3. ``make_spec``: validate the user's ``cron``/``every``/``tz`` and build one of the two, with
   errors that say what is allowed.
Times are integer milliseconds since the epoch (Redis time); no clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

#: Shortest interval accepted for ``every`` (ms).
MIN_EVERY_MS = 1000


class Spec(Protocol):
    def next_after(self, ms: int) -> int:
        """The first slot strictly after ``ms``."""

    def describe(self) -> str:
        """``cron '*/5 * * * *' Europe/Paris`` or ``every 30s``."""


@dataclass(frozen=True)
class Cron:
    expr: str
    tz: str = "UTC"

    def next_after(self, ms: int) -> int:
        zone = ZoneInfo(self.tz)
        start = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(zone)
        try:
            slot = next(CronSim(self.expr, start))
        except StopIteration:
            raise ValueError(f"cron {self.expr!r} has no slot in the next 50 years") from None
        return int(slot.timestamp() * 1000)

    def describe(self) -> str:
        return f"cron '{self.expr}' {self.tz}"


@dataclass(frozen=True)
class Every:
    ms: int

    def next_after(self, ms: int) -> int:
        return (ms // self.ms + 1) * self.ms

    def describe(self) -> str:
        return f"every {_seconds_text(self.ms)}"


def _seconds_text(ms: int) -> str:
    s = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{s:g}s"


def cron_problem(expr: str) -> str | None:
    """None if ``expr`` is a valid 5-field cron expression, else what is wrong."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        return "a cron expression has 5 fields: minute hour day-of-month month day-of-week"
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CronSimError as exc:
        return f"invalid cron expression: {exc}"
    return None


def tz_problem(name: str) -> str | None:
    """None if ``name`` is an IANA timezone zoneinfo knows, else what is wrong."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return f"unknown timezone {name!r}; use an IANA name such as 'Europe/Paris' or 'UTC'"
    return None


def every_ms(every: float | timedelta) -> int:
    """An interval as whole milliseconds."""
    seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
    return int(round(seconds * 1000))


def make_spec(
    cron: str | None = None, every: float | timedelta | None = None, tz: str | None = None
) -> Cron | Every:
    """Build the spec of a schedule; ValueError says what is wrong."""
    if (cron is None) == (every is None):
        raise ValueError("give exactly one of cron (a cron expression) or every (an interval)")
    if every is not None:
        if tz is not None:
            raise ValueError("tz applies to cron schedules only; an interval does not use it")
        if isinstance(every, bool) or not isinstance(every, (int, float, timedelta)):
            raise ValueError(f"every must be seconds or a timedelta, got {every!r}")
        ms = every_ms(every)
        if ms < MIN_EVERY_MS:
            raise ValueError(f"every must be at least {MIN_EVERY_MS // 1000} second, got {every!r}")
        return Every(ms)
    problem = cron_problem(cron)  # type: ignore[arg-type]
    if problem is None and tz is not None:
        problem = tz_problem(tz)
    if problem is not None:
        raise ValueError(problem)
    return Cron(str(cron), tz or "UTC")
