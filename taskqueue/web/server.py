"""The standalone HTTP server (``task-worker web``, and the worker master's HTTP child): uvicorn
serving ``create_app`` plus Prometheus text at ``/metrics`` of the root.

Duties:
1. Refuse to start when ``[web] auto_configure_routes`` is false (exit 2, saying why).
2. Serve until SIGTERM/SIGINT (uvicorn's graceful shutdown); exit 1 if the address is taken.
3. As the master's child (``parent_pid``), exit when that master is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from ..config import TaskQueueConfig
from ..redact import redact_url

log = logging.getLogger("taskqueue.web")

USAGE_ERROR = 2


def check(cfg: TaskQueueConfig) -> str | None:
    """Why this configuration cannot serve, or None."""
    if not cfg.web.auto_configure_routes:
        return ("[web] auto_configure_routes = false: the standalone server is off; mount "
                "taskqueue.web.create_app in your own app, or set it to true")  # fmt: skip
    return None


def _watch_parent(parent_pid: int) -> None:
    """Stop this process (SIGTERM: graceful) once its parent master is gone."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve(
    cfg: TaskQueueConfig, bind: str | None = None, port: int | None = None,
    parent_pid: int | None = None,
) -> int:  # fmt: skip
    """Run the server in this process until it is stopped; the exit status."""
    import uvicorn

    from .app import create_app

    why = check(cfg)
    if why:
        log.error("%s", why)
        return USAGE_ERROR
    host, port = bind or cfg.web.bind, int(port or cfg.web.port)
    app = create_app(cfg, prometheus_at_root=True, dashboard_at_root=True)
    if parent_pid is not None:
        _watch_parent(parent_pid)
    level = {"warn": "warning"}.get(str(cfg.logging.level).lower(), str(cfg.logging.level).lower())
    config = uvicorn.Config(app, host=host, port=port, access_log=False, lifespan="on",
                            log_level="warning" if level == "info" else level,
                            log_config=None)  # fmt: skip
    server = uvicorn.Server(config)
    log.info("HTTP API on http://%s:%d%s/ (namespace %s on %s)", host, port,
             cfg.web.route_prefix, cfg.redis.namespace, redact_url(cfg.redis.url))  # fmt: skip
    server.run()
    return 0 if server.started else 1
