"""Logging for taskqueue processes: one handler, three formats, credentials never written.

Duties:
1. ``configure_logging`` installs one root handler in the json, compact or pretty format
   (``configure_logging_from_env`` / ``_from_config`` take them from the settings).
2. ``RedactFilter`` removes Redis URL credentials from messages, arguments and extra fields;
   every formatter also redacts its finished line (tracebacks included).
3. ``lifecycle`` logs one job lifecycle event with its fields, for nothing when disabled; the
   ``error_chain`` field only with ``logging.enable_error_chain_analysis``.
4. ``scaling_decision`` logs one autoscaler decision with its reasons.
5. Levels: Python's, plus ``TRACE`` (5, below DEBUG) and ``WARN`` (= WARNING), the names the
   product description uses. Field names and jq recipes: docs/logging.md.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import IO, Any

from taskqueue.errors import ConfigError
from taskqueue.redact import redact_text

try:
    from pythonjsonlogger.json import JsonFormatter
except ImportError:  # python-json-logger < 3
    from pythonjsonlogger.jsonlogger import JsonFormatter  # type: ignore[no-redef]

FORMATS = ("json", "compact", "pretty")
LIFECYCLE_LEVELS: dict[str, int] = {
    "enqueued": logging.INFO,
    "started": logging.INFO,
    "succeeded": logging.INFO,
    "retrying": logging.WARNING,
    "failed": logging.ERROR,
    "dead": logging.ERROR,
    "timeout": logging.ERROR,
}
HANDLER_NAME = "taskqueue"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MAX_CHAIN = 20
TRACE = 5
logging.addLevelName(TRACE, "TRACE")
#: Level names accepted besides Python's own.
LEVEL_ALIASES = {"WARN": "WARNING", "TRACE": "TRACE"}
_lifecycle_enabled = True
_error_chain_enabled = True
#: Seconds between performance records, or None when performance monitoring is off.
_performance_interval: float | None = None


# -- redaction ---------------------------------------------------------------------------


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


class RedactFilter(logging.Filter):
    """Replace credentials in Redis URLs in the message, its arguments and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it
            return True
        record.msg, record.args = redact_text(message), None
        for key in extra_fields(record):
            record.__dict__[key] = _redact(record.__dict__[key])
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields added through ``extra=`` (everything that is not a standard attribute)."""
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


# -- formatters --------------------------------------------------------------------------


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def _kv(value: Any) -> str:
    if isinstance(value, str) and value and not any(c in value for c in ' "=\n'):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


class CompactFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO taskqueue.worker message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={_kv(v)}" for k, v in extra_fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        line = f"{line} {fields}" if fields else line
        return redact_text(self._with_exception(line, record))

    def _with_exception(self, line: str, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:  # cached, as logging.Formatter does
            record.exc_text = self.formatException(record.exc_info)
        return f"{line}\n{record.exc_text}" if record.exc_text else line


_COLOURS = {"DEBUG": "36", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}


class PrettyFormatter(CompactFormatter):
    """Aligned, human-oriented lines; ANSI colour only when ``colour`` is true."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = self._paint(_COLOURS.get(record.levelname, "0"), f"{record.levelname:<8}")
        name = self._paint("2", record.name)
        fields = "  ".join(f"{k}={_kv(v)}" for k, v in extra_fields(record).items())
        line = f"{clock}.{int(record.msecs):03d} {level} {name}  {record.getMessage()}"
        line = f"{line}  {self._paint('2', fields)}" if fields else line
        return redact_text(self._with_exception(line, record))


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message and every extra field."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            json_default=str,
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def make_formatter(format: str, stream: IO[str] | Any = None) -> logging.Formatter:
    """The formatter for ``format`` (json, compact or pretty)."""
    if format == "json":
        return JsonLineFormatter()
    if format == "compact":
        return CompactFormatter()
    if format == "pretty":
        isatty = getattr(stream, "isatty", None)
        return PrettyFormatter(colour=bool(isatty and isatty()))
    raise ConfigError(f"log format {format!r} is invalid; allowed: {', '.join(FORMATS)}")


# -- set-up ------------------------------------------------------------------------------


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = str(level).upper()
    value = logging.getLevelName(LEVEL_ALIASES.get(name, name))
    if not isinstance(value, int):
        raise ConfigError(
            f"log level {level!r} is invalid; allowed: TRACE, DEBUG, INFO, WARN, WARNING, ERROR, "
            "CRITICAL"
        )
    return value


def configure_logging(
    level: str | int = "INFO", format: str = "compact", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr by default) in ``format``; return the handler.

    Replaces a handler installed by an earlier call, so it can be called again after a fork
    or a reload. Raises ``ConfigError`` for an unknown level or format.
    """
    numeric = _level(level)
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(make_formatter(str(format).lower(), stream))
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    return handler


def configure_logging_from_env(
    env: Mapping[str, str] | None = None, stream: IO[str] | None = None
) -> logging.Handler:
    """``configure_logging`` from ``LOG_LEVEL``/``LOG_FORMAT`` (or ``TASKQUEUE_LOGGING__*``).

    Also reads ``TASKQUEUE_LOGGING__ENABLE_TASK_LIFECYCLE``. Values are checked like the config.
    """
    from taskqueue.config.loader import from_env
    from taskqueue.config.model import TaskQueueConfig
    from taskqueue.config.schema import SETTINGS

    env = os.environ if env is None else env
    wanted = ("metrics.enabled", "metrics.export_interval")  # the performance records' period
    mine = {n for s in SETTINGS if s.section == "logging" or s.path in wanted
            for n in (s.env, *s.env_aliases)}  # fmt: skip
    found = from_env({k: v for k, v in env.items() if k in mine})
    cfg = TaskQueueConfig.default()
    cfg._apply(found)
    return configure_logging_from_config(cfg, stream)


def configure_logging_from_config(cfg: Any, stream: IO[str] | None = None) -> logging.Handler:
    """``configure_logging`` from a ``TaskQueueConfig``'s ``[logging]`` section, with its
    switches (lifecycle records, error chains, performance records every
    ``[metrics] export_interval`` seconds unless ``[metrics] enabled`` is false)."""
    lg = cfg.logging
    set_lifecycle_enabled(lg.enable_task_lifecycle)
    set_error_chain_enabled(lg.enable_error_chain_analysis)
    on = lg.enable_performance_monitoring and cfg.metrics.enabled
    set_performance_interval(cfg.metrics.export_interval if on else None)
    return configure_logging(lg.level, lg.format, stream)


def set_lifecycle_enabled(enabled: bool) -> None:
    """Turn ``lifecycle`` records on or off (setting ``logging.enable_task_lifecycle``)."""
    global _lifecycle_enabled
    _lifecycle_enabled = bool(enabled)


def set_error_chain_enabled(enabled: bool) -> None:
    """Attach ``error_chain`` to failure records or not (``logging.enable_error_chain_analysis``)."""
    global _error_chain_enabled
    _error_chain_enabled = bool(enabled)


def set_performance_interval(seconds: float | None) -> None:
    """Log ``performance_metric`` records every ``seconds`` from each worker (None: never)."""
    global _performance_interval
    _performance_interval = seconds


def performance_interval() -> float | None:
    return _performance_interval


def safe_extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` usable as ``extra=``: names that clash with LogRecord attributes get ``field_``."""
    return {(f"field_{k}" if k in _STANDARD else k): v for k, v in fields.items()}


# -- structured records ------------------------------------------------------------------


def error_chain(exc: BaseException) -> list[dict[str, str]]:
    """``[{"type", "message"}, ...]`` for ``exc`` and each ``__cause__``/``__context__`` behind it."""
    chain: list[dict[str, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(current))
        chain.append({"type": type(current).__qualname__, "message": redact_text(str(current))})
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return chain


def lifecycle(
    logger: logging.Logger,
    event: str,
    *,
    task_id: str,
    task_name: str,
    queue: str,
    attempt: int,
    worker: str,
    duration_ms: float | None = None,
    exc: BaseException | None = None,
    error: str | None = None,
    outcome: str | None = None,
    retry_in_ms: int | None = None,
) -> None:
    """Log one job lifecycle ``event``; costs one dict lookup and a level check when off.

    A failure record (``retrying``, ``failed``, ``dead``, ``timeout``) gives the ``outcome``
    recorded in Redis (``scheduled``, ``dead``, ``failed``): ``will_retry`` and, when it will,
    ``retry_in_ms``, and ``dead`` when the job went to the dead letter."""
    level = LIFECYCLE_LEVELS.get(event)
    if level is None:
        raise ValueError(
            f"unknown lifecycle event {event!r}; allowed: {', '.join(LIFECYCLE_LEVELS)}"
        )
    if not _lifecycle_enabled or not logger.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "event": event,
        "task_id": task_id,
        "task_name": task_name,
        "queue": queue,
        "attempt": attempt,
        "worker": worker,
    }
    if duration_ms is not None:
        extra["duration_ms"] = round(duration_ms, 3)
    if outcome is not None:
        extra["will_retry"] = outcome == "scheduled"
        if outcome == "scheduled" and retry_in_ms is not None:
            extra["retry_in_ms"] = retry_in_ms
        extra["dead"] = outcome == "dead"
    if exc is not None and _error_chain_enabled:
        extra["error_chain"] = error_chain(exc)
    if error is not None or exc is not None:
        extra["error"] = error if error is not None else f"{type(exc).__qualname__}: {exc}"
    exc_info = (
        (type(exc), exc, exc.__traceback__) if exc is not None and level >= logging.ERROR else None
    )
    logger.log(level, "task %s[%s] %s", task_name, task_id, event, extra=extra, exc_info=exc_info)


def scaling_decision(
    logger: logging.Logger, decision: str, reasons: list[str], **fields: Any
) -> None:
    """Log an autoscaler decision (``scale_up``, ``scale_down``, ``hold``) with its reasons."""
    if not logger.isEnabledFor(logging.INFO):
        return
    extra = safe_extra(fields)
    extra.update(operation="scaling_decision", decision=decision, reasons=list(reasons))
    logger.info(
        "scaling decision: %s (%s)", decision, "; ".join(reasons) or "no reason", extra=extra
    )
