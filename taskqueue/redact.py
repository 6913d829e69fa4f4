"""Remove credentials from Redis URLs before they reach a log line, a status record or a metric."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_IN_TEXT = re.compile(r"(rediss?(\+cluster|\+sentinel)?|unix)://[^\s'\"]+")


def redact_url(url: str) -> str:
    """Return ``url`` with any password (and username) replaced by ``***``.

    ``redis://user:secret@host:6379/0`` becomes ``redis://***@host:6379/0``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """Redact every Redis URL found inside free text (error messages, reprs)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
