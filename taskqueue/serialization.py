"""The job envelope: versioned MessagePack, never pickle.

A payload is ``msgpack([ENVELOPE_VERSION, args, kwargs])``. Results are plain MessagePack.
Anything MessagePack cannot represent (objects, sets, datetimes) is refused at enqueue time with
an error naming the argument, instead of failing later inside a worker.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import SerializationError

ENVELOPE_VERSION = 1
#: Default largest encoded payload accepted by enqueue (bytes).
DEFAULT_MAX_PAYLOAD = 1024 * 1024


class MalformedPayload(ValueError):
    """A stored payload could not be decoded into (args, kwargs)."""


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


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
            "Pass plain data (str, int, float, bool, None, bytes, list, dict)."
        ) from None


def decode_call(payload: bytes) -> tuple[list, dict]:
    """Decode a payload into (args, kwargs); raise MalformedPayload saying what is wrong."""
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
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
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
