"""Next-fire times: cron in a timezone across DST changes (cronsim + zoneinfo), intervals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from taskqueue.schedules.spec import Cron, Every, make_spec

PARIS = ZoneInfo("Europe/Paris")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def local(slot_ms: int, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.fromtimestamp(slot_ms / 1000, timezone.utc).astimezone(zone)


def slots(spec: Cron | Every, start: datetime, n: int) -> list[int]:
    out, t = [], ms(start)
    for _ in range(n):
        t = spec.next_after(t)
        out.append(t)
    return out


def test_spring_forward_a_time_in_the_skipped_hour_runs_once_at_the_first_valid_minute() -> None:
    # Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    got = slots(Cron("30 2 * * *", "Europe/Paris"), datetime(2026, 3, 27, 12, tzinfo=PARIS), 3)
    assert [local(s).isoformat() for s in got] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # the skipped 02:30, run once at 03:00
        "2026-03-30T02:30:00+02:00",
    ]


def test_fall_back_a_time_in_the_repeated_hour_runs_once_not_twice() -> None:
    # Paris, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice that night.
    got = slots(Cron("30 2 * * *", "Europe/Paris"), datetime(2026, 10, 24, 12, tzinfo=PARIS), 2)
    assert [local(s).isoformat() for s in got] == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30 only
        "2026-10-26T02:30:00+01:00",
    ]


def test_intervals_in_minutes_follow_real_time_through_both_changes() -> None:
    spec = Cron("*/30 * * * *", "Europe/Paris")
    for start in (datetime(2026, 3, 29, 0, 50, tzinfo=PARIS),
                  datetime(2026, 10, 25, 1, 50, tzinfo=PARIS)):  # fmt: skip
        got = slots(spec, start, 8)
        assert all(b - a == 30 * 60 * 1000 for a, b in pairwise(got)), [
            local(s).isoformat() for s in got
        ]
    # Fall back: both 02:00 and both 02:30 happen, an hour of real time apart.
    got = slots(spec, datetime(2026, 10, 25, 1, 50, tzinfo=PARIS), 6)
    assert [local(s).strftime("%H:%M%z") for s in got] == [
        "02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100", "03:00+0100", "03:30+0100",
    ]  # fmt: skip


def test_hourly_job_skips_the_missing_hour_and_keeps_both_repeated_ones() -> None:
    spec = Cron("0 * * * *", "Europe/Paris")
    spring = slots(spec, datetime(2026, 3, 29, 0, 30, tzinfo=PARIS), 3)
    assert [local(s).strftime("%H:%M%z") for s in spring] == ["01:00+0100", "03:00+0200",
                                                              "04:00+0200"]  # fmt: skip
    fall = slots(spec, datetime(2026, 10, 25, 1, 30, tzinfo=PARIS), 3)
    assert [local(s).strftime("%H:%M%z") for s in fall] == ["02:00+0200", "02:00+0100",
                                                            "03:00+0100"]  # fmt: skip


def test_new_york_spring_forward() -> None:
    ny = ZoneInfo("America/New_York")  # 2026-03-08 02:00 EST -> 03:00 EDT
    got = slots(Cron("15 2 * * *", "America/New_York"), datetime(2026, 3, 7, 12, tzinfo=ny), 2)
    assert [local(s, ny).isoformat() for s in got] == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:15:00-04:00",
    ]


def test_next_after_is_strictly_after() -> None:
    spec = Cron("*/5 * * * *")
    t = ms(datetime(2026, 1, 1, 10, 5, tzinfo=timezone.utc))
    assert spec.next_after(t) == t + 5 * 60_000
    assert spec.next_after(t - 1) == t


def test_every_is_aligned_on_the_epoch() -> None:
    spec = Every(30_000)
    assert spec.next_after(0) == 30_000
    assert spec.next_after(29_999) == 30_000
    assert spec.next_after(30_000) == 60_000
    assert make_spec(every=timedelta(minutes=1)).describe() == "every 1m"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron"),
        ({"cron": "* * * * *", "every": 5}, "exactly one of cron"),
        ({"cron": "* * *"}, "5 fields"),
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "* * * * *", "tz": "Mars/Base"}, "unknown timezone 'Mars/Base'"),
        ({"every": 0.2}, "at least 1 second"),
        ({"every": 5, "tz": "UTC"}, "tz applies to cron schedules only"),
    ],
)
def test_bad_specs_say_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_spec(**kwargs)
