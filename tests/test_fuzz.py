"""Fuzzing with hypothesis: the envelope decoder, the config loader and the task options.

Each target must either succeed or raise its one documented error with a message; never crash
with another exception, never hang. Bounded: a fixed number of examples and no deadline
surprises (the whole module runs in a few seconds; ``FUZZ_EXAMPLES`` raises it for a long run).
"""

from __future__ import annotations

import math
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskqueue.config import TaskQueueConfig
from taskqueue.errors import ConfigError, EnqueueError, InvalidOption
from taskqueue.jobs import make_job
from taskqueue.registry import Registry, TaskOptions
from taskqueue.serialization import MalformedPayload, decode_call

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

ints = st.integers(-(2**63), 2**64 - 1)
scalars = (
    st.none() | st.booleans() | ints | st.floats() | st.text(max_size=20) | st.binary(max_size=20)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=5) | ints, inner, max_size=4),
                      max_leaves=12)  # fmt: skip


@FUZZ
@given(st.binary(max_size=200) | values.map(lambda v: msgpack.packb(v, use_bin_type=True)))
def test_envelope_decoder_accepts_or_says_what_is_wrong(payload: bytes) -> None:
    try:
        args, kwargs = decode_call(payload)
    except MalformedPayload as exc:
        assert str(exc)
    else:
        assert isinstance(args, list) and isinstance(kwargs, dict)


@FUZZ
@given(st.lists(values, max_size=3), st.dictionaries(st.text(max_size=5), values, max_size=3))
def test_envelope_round_trips_what_it_accepts(args: list, kwargs: dict) -> None:
    from taskqueue.serialization import encode_call

    payload = encode_call("t", args, kwargs)
    got_args, got_kwargs = decode_call(payload)
    assert len(got_args) == len(args) and set(got_kwargs) == set(kwargs)


SECTIONS = ["redis", "workers", "logging", "queues", "web", "nope"]
KEYS = ["url", "count", "initial_count", "lease_seconds", "max_stalls", "level", "format",
        "imports", "queues", "namespace", "key_prefix", "pool_size", "x"]  # fmt: skip
toml_values = (st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.booleans()
               | st.text(max_size=20) | st.lists(st.text(max_size=8), max_size=3))  # fmt: skip


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)  # fmt: skip
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
@given(st.dictionaries(st.tuples(st.sampled_from(SECTIONS), st.sampled_from(KEYS)), toml_values,
                       max_size=5), st.binary(max_size=40))  # fmt: skip
def test_config_loader_loads_or_names_the_culprit(entries: dict, garbage: bytes) -> None:
    by_section: dict[str, list[str]] = {}
    for (section, key), value in entries.items():
        by_section.setdefault(section, []).append(f"{key} = {_toml(value)}")
    text = "\n".join(f"[{s}]\n" + "\n".join(lines) for s, lines in by_section.items())
    with tempfile.TemporaryDirectory() as tmp:
        for body in (text.encode(), garbage, text.encode() + b"\n" + garbage):
            path = Path(tmp) / "task-queue.toml"
            path.write_bytes(body)
            try:
                TaskQueueConfig.load(path, env={})
            except ConfigError as exc:
                assert str(exc)


@FUZZ
@given(st.dictionaries(st.sampled_from(["TASKQUEUE_WORKERS__COUNT", "TASKQUEUE_REDIS__URL",
                                        "TASKQUEUE_WORKERS__LEASE_SECONDS", "REDIS_URL",
                                        "TASKQUEUE_LOGGING__LEVEL", "TASKQUEUE_NOPE__X"]),
                       st.text(max_size=30), max_size=4))  # fmt: skip
def test_config_environment_loads_or_names_the_culprit(env: dict) -> None:
    try:
        TaskQueueConfig.load(None, env=env)
    except ConfigError as exc:
        assert str(exc)


option_values = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
                 | st.just(timedelta(seconds=-1)) | st.just(timedelta(seconds=3)))  # fmt: skip


@FUZZ
@given(timeout=option_values, max_retries=option_values, delay=option_values,
       key=option_values, queue=st.none() | st.text(max_size=10) | st.integers())  # fmt: skip
def test_enqueue_options_are_accepted_or_refused_clearly(timeout, max_retries, delay, key,
                                                         queue) -> None:  # fmt: skip
    try:
        job = make_job(Registry(), "t", (1,), None, queue=queue, timeout=timeout,
                       max_retries=max_retries, delay=delay, key=key, strict=False,
                       max_payload=1024)  # fmt: skip
    except EnqueueError as exc:
        assert str(exc)
    else:
        assert job.timeout_ms >= 0 and job.max_retries >= 0 and job.delay_ms >= 0
        assert job.key is None or job.key


@FUZZ
@given(timeout=option_values, max_retries=option_values, result_ttl=option_values,
       retry_backoff=option_values)  # fmt: skip
def test_task_options_are_accepted_or_refused_clearly(timeout, max_retries, result_ttl,
                                                      retry_backoff) -> None:  # fmt: skip
    kwargs = {"timeout": timeout, "max_retries": max_retries, "result_ttl": result_ttl,
              "retry_backoff": retry_backoff}  # fmt: skip
    try:
        TaskOptions(**{k: v for k, v in kwargs.items() if v is not None or k == "timeout"})
    except InvalidOption as exc:
        assert str(exc)


@pytest.mark.parametrize(
    ("options", "culprit"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"max_retries": "3"}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"key": 5}, "idempotency key"),
        ({"key": ""}, "idempotency key"),
        ({"delay": -5}, "delay"),
        ({"at": 12345}, "at must be a datetime"),
    ],
)
def test_bad_options_name_the_culprit(tq, options: dict, culprit: str) -> None:
    with pytest.raises(InvalidOption, match=culprit):
        tq.enqueue_with("t", (1,), strict=False, **options)


def test_task_declared_with_a_bad_option_fails_at_import() -> None:
    from taskqueue import task

    with pytest.raises(InvalidOption, match="task 'bad': timeout"):
        task(name="bad", registry=Registry(), timeout=-1)(lambda: None)
