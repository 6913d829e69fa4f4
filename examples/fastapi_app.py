"""Mount the taskqueue HTTP API in a FastAPI app (Starlette works the same way).

    pip install 'taskqueue[web]' fastapi
    REDIS_URL=redis://127.0.0.1:6379 uvicorn examples.fastapi_app:app --port 8000
    curl -s http://127.0.0.1:8000/tasks/health | jq .status

The API serves its routes under ``[web] route_prefix`` (default ``/tasks``) itself, so it is
mounted at the root of your app and answers ``/tasks/health``, ``/tasks/metrics``... beside
your own routes. To put it under a path of your own instead, set ``route_prefix = ""`` and
mount it there: ``app.mount("/ops/queue", create_app(cfg))``.

Settings come from ``$TASKQUEUE_CONFIG`` and the environment (``REDIS_URL``,
``TASKQUEUE_WEB__TOKEN`` for the write actions); pass ``create_app("task-queue.toml")`` to
name a file.
"""

from __future__ import annotations

from fastapi import FastAPI

from taskqueue.web import create_app

app = FastAPI(title="my service")


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


app.mount("/", create_app())
