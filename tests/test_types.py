"""Extension types: datetime, date, time, timedelta, UUID and Decimal round-trip through a real
worker as themselves (timezone-aware datetimes keep their zone); user types via register_type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from conftest import running_worker

from taskqueue import TaskQueue, task
from taskqueue.registry import Registry
from taskqueue.serialization import decode_call, register_type

VALUES = {
    "naive datetime": datetime(2024, 5, 1, 12, 30, 15, 123456),
    "aware datetime (zoneinfo)": datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
    "aware datetime (utc)": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
    "date": date(2024, 2, 29),
    "time": time(23, 59, 59, 999999),
    "aware time": time(8, 0, tzinfo=timezone(timedelta(hours=-5))),
    "timedelta": timedelta(days=-2, seconds=3, microseconds=4),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("-12.3400"),
    "nested": {"when": [date(2000, 1, 1)], "ids": (uuid.UUID(int=1),)},
}


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


register_type(Money, 64, lambda m: f"{m.amount}|{m.currency}".encode(),
              lambda b: Money(Decimal(b.decode().split("|")[0]), b.decode().split("|")[1]))  # fmt: skip


def test_each_extension_type_round_trips_through_a_worker(redis_url) -> None:
    reg = Registry()

    @task(name="echo_types", registry=reg)
    def echo(value, kind):
        # the worker sees the same type the client sent, and returns it
        return {
            "value": value,
            "type": type(value).__name__,
            "tz": str(getattr(value, "tzinfo", "")),
        }

    tq = TaskQueue(redis_url, registry=reg)
    with running_worker(tq, reg):
        jobs = {k: tq.enqueue(echo, v, k) for k, v in VALUES.items()}
        money = tq.enqueue(echo, Money(Decimal("9.99"), "EUR"), "money")
        for kind, job in jobs.items():
            out = tq.result(job, timeout=30)
            sent = VALUES[kind]
            expected = (
                {"when": [date(2000, 1, 1)], "ids": [uuid.UUID(int=1)]}
                if kind == "nested"
                else sent
            )
            assert out["value"] == expected and type(out["value"]) is type(expected), kind
            assert out["type"] == type(sent).__name__, kind
        paris = tq.result(jobs["aware datetime (zoneinfo)"], timeout=30)
        assert paris["value"].tzinfo == ZoneInfo("Europe/Paris") and paris["tz"] == "Europe/Paris"
        assert tq.result(money, timeout=30)["value"] == Money(Decimal("9.99"), "EUR")
    tq.close()


def test_register_type_refuses_reserved_codes() -> None:
    with pytest.raises(ValueError, match="reserved"):
        register_type(Money, 5, bytes, bytes)


def test_a_stored_payload_with_an_unknown_extension_is_malformed() -> None:
    import msgpack

    from taskqueue.serialization import MalformedPayload

    payload = msgpack.packb([1, [msgpack.ExtType(99, b"x")], {}], use_bin_type=True)
    with pytest.raises(MalformedPayload, match="unknown extension type 99"):
        decode_call(payload)
