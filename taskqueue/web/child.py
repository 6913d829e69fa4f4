"""Entry point of the master's HTTP child (``python -m taskqueue.web.child``).

Reads ``{"values": {setting path: value}, "parent": pid}`` as JSON on stdin (the master's
``httpchild.py`` writes it), serves the API with ``server.serve`` and exits when its master is
gone. The configuration travels through the pipe so that the token and the Redis password
never appear in argv or the environment.
"""

from __future__ import annotations

import json
import sys

from setproctitle import setproctitle

from ..config import TaskQueueConfig
from ..logs import configure_logging_from_config
from .server import serve


def main() -> int:
    data = json.load(sys.stdin)
    values = data["values"]
    cfg = TaskQueueConfig(values, dict.fromkeys(values, "the master's configuration")).validate()
    configure_logging_from_config(cfg)
    setproctitle(f"task-worker: http {cfg.web.bind}:{cfg.web.port}")
    return serve(cfg, parent_pid=int(data["parent"]))


if __name__ == "__main__":
    sys.exit(main())
