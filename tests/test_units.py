"""Pure logic, no Redis: backoff, registry, serialization, key names, URL redaction."""

from __future__ import annotations

import random

import pytest

from taskqueue import Task, task
from taskqueue.backoff import backoff_ms, bounds_ms
from taskqueue.errors import RegistryError
from taskqueue.keys import Keys
from taskqueue.redact import redact_text, redact_url
from taskqueue.registry import Registry
from taskqueue.serialization import MalformedPayload, decode_call, encode_call


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 10, 30])
def test_backoff_stays_within_its_jitter_bounds(failures: int) -> None:
    rng = random.Random(failures)
    low, high = bounds_ms(failures, base=2.0, cap=300.0)
    samples = [backoff_ms(failures, 2.0, 300.0, rng.random) for _ in range(500)]
    assert all(low <= s <= high for s in samples)
    assert max(samples) - min(samples) > (high - low) / 2, "jitter should spread retries"


def test_backoff_doubles_then_caps() -> None:
    assert [bounds_ms(n, 1.0, 8.0)[1] for n in range(1, 7)] == [1000, 2000, 4000, 8000, 8000, 8000]
    assert backoff_ms(0) == 0


def test_registering_two_tasks_under_one_name_names_both() -> None:
    reg = Registry()

    @task(name="dup", registry=reg)
    def first():
        pass

    with pytest.raises(RegistryError, match=r"'dup' is already registered to .*first.*second"):

        @task(name="dup", registry=reg)
        def second():
            pass


def test_task_subclasses_register_with_default_and_explicit_names() -> None:
    class Plain(Task):
        def run(self):
            return 1

    class Named(Task):
        name = "custom.name"
        max_retries = 7

        async def run(self):
            return 2

    assert Plain.name.endswith("Plain") and Plain.spec.is_async is False
    assert Named.spec.is_async is True and Named.spec.options.max_retries == 7


def test_unknown_task_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown task option"):
        task(name="x", registry=Registry(), retries=3)


def test_envelope_round_trip_and_malformed_payloads() -> None:
    assert decode_call(encode_call("t", (1, "a", b"b"), {"k": [1]})) == ([1, "a", b"b"], {"k": [1]})
    with pytest.raises(MalformedPayload, match="not valid MessagePack"):
        decode_call(b"\xc1")
    with pytest.raises(MalformedPayload, match="envelope"):
        decode_call(b"\x01")


def test_keys_share_one_hash_tag() -> None:
    k = Keys("tq", "orders")
    for key in (k.job("1"), k.ready("q"), k.scheduled("q"), k.active("q"), k.dead, k.stats):
        assert key.startswith("tq:{orders}:")
    with pytest.raises(ValueError):
        Keys("tq", "bad namespace")


def test_redact_url_hides_credentials() -> None:
    assert redact_url("redis://user:secret@host:6379/0") == "redis://***@host:6379/0"
    assert redact_url("redis://host:6379") == "redis://host:6379"
    assert "secret" not in redact_text("failed to reach rediss://:secret@10.0.0.1:6380 (timeout)")
