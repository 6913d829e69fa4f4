"""Tests for taskqueue/logs.py: formats, redaction, lifecycle and scaling records."""

from __future__ import annotations

import io
import json
import logging

import pytest

from taskqueue import logs
from taskqueue.errors import ConfigError

SECRET = "hunter2"
URL = f"redis://user:{SECRET}@redis.internal:6379/0"
FIELDS = dict(task_id="t-1", task_name="add", queue="default", attempt=1, worker="w-1")


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logs.set_lifecycle_enabled(True)


def capture(fmt: str, level: str = "DEBUG") -> tuple[io.StringIO, logging.Logger]:
    stream = io.StringIO()
    logs.configure_logging(level, fmt, stream)
    return stream, logging.getLogger("taskqueue.test")


def chained() -> RuntimeError:
    try:
        try:
            raise ConnectionError(f"cannot reach {URL}")
        except ConnectionError as inner:
            raise RuntimeError("task body failed") from inner
    except RuntimeError as exc:
        return exc


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_succeeded_record_carries_lifecycle_fields():
    stream, log = capture("json")
    logs.lifecycle(log, "succeeded", duration_ms=12.5, **FIELDS)
    (rec,) = json_lines(stream)
    assert rec["level"] == "INFO" and rec["logger"] == "taskqueue.test" and rec["timestamp"]
    assert rec["message"] == "task add[t-1] succeeded"
    assert rec["event"] == "succeeded" and rec["duration_ms"] == 12.5
    for key, value in FIELDS.items():
        assert rec[key] == value


def test_json_failed_record_carries_error_chain():
    stream, log = capture("json")
    logs.lifecycle(log, "failed", duration_ms=3.0, exc=chained(), **{**FIELDS, "attempt": 3})
    (rec,) = json_lines(stream)
    assert rec["level"] == "ERROR" and rec["event"] == "failed" and rec["attempt"] == 3
    assert [c["type"] for c in rec["error_chain"]] == ["RuntimeError", "ConnectionError"]
    assert rec["error"] == "RuntimeError: task body failed"
    assert SECRET not in stream.getvalue()


@pytest.mark.parametrize(
    ("event", "level"),
    [("enqueued", "INFO"), ("started", "INFO"), ("succeeded", "INFO"), ("retrying", "WARNING"),
     ("failed", "ERROR"), ("dead", "ERROR"), ("timeout", "ERROR")],
)  # fmt: skip
def test_lifecycle_levels(event, level):
    stream, log = capture("json")
    logs.lifecycle(log, event, error="x" if level != "INFO" else None, **FIELDS)
    (rec,) = json_lines(stream)
    assert rec["level"] == level and rec["event"] == event


def test_unknown_event_is_rejected():
    with pytest.raises(ValueError, match="unknown lifecycle event"):
        logs.lifecycle(logging.getLogger("x"), "exploded", **FIELDS)


def test_error_chain_follows_context_and_stops_on_cycles():
    try:
        try:
            raise KeyError("a")
        except KeyError:
            raise ValueError("b") from None
    except ValueError as exc:
        assert [c["type"] for c in logs.error_chain(exc)] == ["ValueError"]
    a, b = ValueError("a"), TypeError("b")
    a.__cause__, b.__cause__ = b, a
    assert len(logs.error_chain(a)) == 2


@pytest.mark.parametrize("fmt", logs.FORMATS)
def test_password_never_in_output(fmt):
    stream, log = capture(fmt)
    log.info("connecting to %s", URL, extra={"url": URL, "urls": [URL]})
    log.warning(f"lost {URL}")
    try:
        raise ConnectionError(f"Error connecting to {URL}")
    except ConnectionError:
        log.exception("broker down")
    logs.lifecycle(log, "failed", exc=chained(), error=f"gave up on {URL}", **FIELDS)
    logs.scaling_decision(log, "hold", [f"redis {URL} slow"], redis=URL)
    out = stream.getvalue()
    assert out.count("\n") >= 5
    assert SECRET not in out
    assert "redis://***@redis.internal:6379/0" in out


def test_compact_line_shape():
    stream, log = capture("compact")
    logs.lifecycle(log, "started", **FIELDS)
    line = stream.getvalue().strip()
    ts, level, name, rest = line.split(" ", 3)
    assert ts.endswith("Z") and level == "INFO" and name == "taskqueue.test"
    assert (
        rest.startswith("task add[t-1] started")
        and "task_id=t-1" in rest
        and "queue=default" in rest
    )


def test_pretty_colour_only_on_a_tty():
    stream, log = capture("pretty")
    log.error("plain")
    assert "\x1b[" not in stream.getvalue()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    logs.configure_logging("INFO", "pretty", tty)
    log.error("coloured")
    assert "\x1b[31m" in tty.getvalue()


def test_lifecycle_builds_no_record_when_level_off_or_disabled():
    made = []
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: made.append(a) or factory(*a, **k))
    try:
        stream, log = capture("json", level="WARNING")
        logs.lifecycle(log, "succeeded", duration_ms=1.0, **FIELDS)
        assert made == [] and stream.getvalue() == ""
        logs.set_lifecycle_enabled(False)
        logs.lifecycle(log, "failed", exc=chained(), **FIELDS)
        assert made == [] and stream.getvalue() == ""
        logs.set_lifecycle_enabled(True)
        logs.lifecycle(log, "failed", **FIELDS)
        assert len(made) == 1
    finally:
        logging.setLogRecordFactory(factory)


def test_scaling_decision_record():
    stream, log = capture("json")
    logs.scaling_decision(
        log, "scale_up", ["queue pressure 2.0 > 1.2"], current=2, desired=4, name="x"
    )
    (rec,) = json_lines(stream)
    assert rec["operation"] == "scaling_decision" and rec["decision"] == "scale_up"
    assert rec["reasons"] == ["queue pressure 2.0 > 1.2"] and rec["desired"] == 4
    assert rec["field_name"] == "x" and rec["logger"] == "taskqueue.test"


def test_configure_replaces_its_own_handler_and_rejects_bad_values():
    logs.configure_logging("INFO", "compact", io.StringIO())
    logs.configure_logging("INFO", "json", io.StringIO())
    mine = [h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME]
    assert len(mine) == 1
    with pytest.raises(ConfigError, match="allowed"):
        logs.configure_logging("LOUD", "json")
    with pytest.raises(ConfigError, match="json, compact, pretty"):
        logs.configure_logging("INFO", "xml")


def test_configure_from_env():
    stream = io.StringIO()
    env = {"LOG_LEVEL": "warning", "LOG_FORMAT": "json"}
    logs.configure_logging_from_env(env, stream)
    log = logging.getLogger("taskqueue.test")
    log.info("hidden")
    log.warning("shown")
    assert [r["message"] for r in json_lines(stream)] == ["shown"]
    stream = io.StringIO()
    logs.configure_logging_from_env(
        {"LOG_LEVEL": "warn", "LOG_FORMAT": "json"}, stream
    )  # tracing's name
    log.info("hidden")
    log.warning("shown too")
    assert [r["message"] for r in json_lines(stream)] == ["shown too"]
    env = {"TASKQUEUE_LOGGING__ENABLE_TASK_LIFECYCLE": "false", "LOG_LEVEL": "INFO"}
    logs.configure_logging_from_env(env, stream)
    logs.lifecycle(log, "started", **FIELDS)
    assert "started" not in stream.getvalue()
    with pytest.raises(ConfigError, match="environment variable LOG_FORMAT"):
        logs.configure_logging_from_env({"LOG_FORMAT": "xml"})


def test_configure_from_config():
    from taskqueue.config import TaskQueueConfig

    cfg = TaskQueueConfig.load(env={"LOG_FORMAT": "json", "LOG_LEVEL": "ERROR"})
    stream = io.StringIO()
    logs.configure_logging_from_config(cfg, stream)
    logging.getLogger("t").error("x")
    assert json_lines(stream)[0]["level"] == "ERROR"
