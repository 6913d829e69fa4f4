"""The job envelope: versioned MessagePack, never pickle.

A payload is ``msgpack([ENVELOPE_VERSION, args, kwargs])``; results are MessagePack too.
Besides MessagePack's own types, these travel as extension types and come back as themselves:
``datetime`` (naive or timezone-aware; a ``zoneinfo`` zone comes back as that zone), ``date``,
``time``, ``timedelta``, ``UUID`` and ``Decimal``. ``register_type`` adds your own (codes
64-127; register it in the process that enqueues and in the workers). Anything else (objects,
sets) is refused at enqueue time with an error naming the argument, instead of failing later
inside a worker.

    register_type(Money, 64, lambda m: f"{m.amount}:{m.currency}".encode(),
                  lambda b: Money(*b.decode().split(":")))
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import msgpack

from .errors import SerializationError

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9 only
    ZoneInfo = None  # type: ignore[assignment,misc]

ENVELOPE_VERSION = 1


class MalformedPayload(ValueError):
    """A stored payload could not be decoded into (args, kwargs)."""


#: Extension codes taskqueue uses itself; ``register_type`` takes codes from USER_CODES.
USER_CODES = range(64, 128)
_ENCODERS: dict[type, tuple[int, Callable[[Any], bytes]]] = {}
_DECODERS: dict[int, Callable[[bytes], Any]] = {}


def register_type(
    cls: type, code: int, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any]
) -> None:
    """Carry instances of ``cls`` (exactly that class) in arguments and results: ``encode``
    turns one into bytes, ``decode`` turns the bytes back. ``code`` (64-127) names the type in
    the payload: keep it stable, and register the same in clients and workers."""
    if code not in USER_CODES:
        raise ValueError(f"extension code {code} is reserved; use one of 64-127")
    if code in _DECODERS and _ENCODERS.get(cls, (None,))[0] != code:
        raise ValueError(f"extension code {code} is already registered")
    _ENCODERS[cls] = (code, encode)
    _DECODERS[code] = decode


def _packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _zone_key(tz: Any) -> str:
    return getattr(tz, "key", "") or ""


def _enc_datetime(d: datetime) -> bytes:
    """[ISO 8601 with its offset, zoneinfo key or "", fold]: the same wall time in the same
    zone comes back (a receiver without that zone keeps the fixed offset)."""
    return _packed([d.isoformat(), _zone_key(d.tzinfo), d.fold])


def _dec_datetime(b: bytes) -> datetime:
    text, zone, fold = msgpack.unpackb(b, raw=False)
    d = datetime.fromisoformat(text)
    if zone and ZoneInfo is not None:
        try:
            return d.replace(tzinfo=ZoneInfo(zone), fold=fold)
        except ZoneInfoNotFoundError:
            pass
    return d.replace(fold=fold)


def _enc_timedelta(t: timedelta) -> bytes:
    return _packed([t.days, t.seconds, t.microseconds])


def _dec_timedelta(b: bytes) -> timedelta:
    days, seconds, micros = msgpack.unpackb(b)
    return timedelta(days=days, seconds=seconds, microseconds=micros)


def _register_builtin(cls: type, code: int, enc: Callable, dec: Callable) -> None:
    _ENCODERS[cls] = (code, enc)
    _DECODERS[code] = dec


_register_builtin(datetime, 1, _enc_datetime, _dec_datetime)
_register_builtin(
    date, 2, lambda d: d.isoformat().encode(), lambda b: date.fromisoformat(b.decode())
)
_register_builtin(
    time, 3, lambda t: t.isoformat().encode(), lambda b: time.fromisoformat(b.decode())
)
_register_builtin(timedelta, 4, _enc_timedelta, _dec_timedelta)
_register_builtin(uuid.UUID, 5, lambda u: u.bytes, lambda b: uuid.UUID(bytes=b))
_register_builtin(Decimal, 6, lambda d: str(d).encode(), lambda b: Decimal(b.decode()))


def _default(value: Any) -> msgpack.ExtType:
    for cls in type(value).__mro__:  # a subclass (a pandas Timestamp) travels as its base
        found = _ENCODERS.get(cls)
        if found is not None:
            code, encode = found
            return msgpack.ExtType(code, encode(value))
    raise TypeError(f"cannot serialize {type(value).__name__} object")


def _ext_hook(code: int, data: bytes) -> Any:
    decode = _DECODERS.get(code)
    if decode is None:
        raise ValueError(f"unknown extension type {code}: register it with register_type")
    return decode(data)


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=_default)


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)


def _culprit(task: str, args: tuple, kwargs: dict) -> str:
    for i, arg in enumerate(args):
        try:
            _pack(arg)
        except (TypeError, ValueError, OverflowError):
            return f"argument {i} ({type(arg).__name__}) of task {task!r}"
    for name, arg in kwargs.items():
        try:
            _pack(arg)
        except (TypeError, ValueError, OverflowError):
            return f"keyword argument {name!r} ({type(arg).__name__}) of task {task!r}"
    return f"the arguments of task {task!r}"


def encode_call(task: str, args: tuple | list, kwargs: dict | None) -> bytes:
    """Encode a call's arguments; raise SerializationError naming the argument that cannot be."""
    try:
        return _pack([ENVELOPE_VERSION, list(args), kwargs or {}])
    except (TypeError, ValueError, OverflowError) as exc:
        where = _culprit(task, tuple(args), kwargs or {})
        raise SerializationError(
            f"cannot encode {where} as MessagePack: {exc}. "
            "Pass plain data (str, int, float, bool, None, bytes, list, dict, datetime, date, "
            "time, timedelta, UUID, Decimal) or register the type with "
            "taskqueue.serialization.register_type."
        ) from None


def decode_call(payload: bytes) -> tuple[list, dict]:
    """Decode a payload into (args, kwargs); raise MalformedPayload saying what is wrong."""
    try:
        value = _unpack(payload)
    except Exception as exc:  # msgpack raises several unrelated types
        raise MalformedPayload(f"payload is not valid MessagePack ({exc})") from None
    if not isinstance(value, list) or len(value) != 3:
        raise MalformedPayload("payload is not a [version, args, kwargs] envelope")
    version, args, kwargs = value
    if version != ENVELOPE_VERSION:
        raise MalformedPayload(f"unsupported envelope version {version!r}")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise MalformedPayload("payload args must be a list and kwargs a map")
    return args, kwargs


def encode_result(value: Any) -> bytes:
    try:
        return _pack(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"task returned a {type(value).__name__}, which MessagePack cannot encode ({exc})"
        ) from None


def decode_result(data: bytes | None) -> Any:
    if data is None:
        return None
    return _unpack(data)
