"""The HTTP API (``create_app``), its Prometheus exposition and the standalone server.

Needs the ``web`` extra: ``pip install 'taskqueue[web]'`` (Starlette, uvicorn,
prometheus-client).
"""

from __future__ import annotations

from typing import Any

try:
    from .app import ROUTES, create_app
except ImportError as exc:  # pragma: no cover - exercised without the extra
    _missing = exc

    def create_app(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        raise ImportError(
            f"taskqueue.web needs the 'web' extra: pip install 'taskqueue[web]' ({_missing})"
        )

    ROUTES = []  # type: ignore[assignment]

__all__ = ["ROUTES", "create_app"]
