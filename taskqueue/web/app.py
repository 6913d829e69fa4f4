"""The ASGI app: ``create_app(config=None, *, redis_url=None)``, built on Starlette.

Duties:
1. Declare every route once (``ROUTES``: method, path, handler, summary, group, whether it
   writes); the Starlette routes and the OpenAPI document are both derived from that table.
2. Serve the routes under ``[web] route_prefix`` (default ``/tasks``): mounted at ``/`` of a
   user's app this gives ``/tasks/health``; a user who mounts it under a path of their own sets
   ``route_prefix = ""``.
3. Apply the settings: ``[web] enable_health_check`` and ``enable_metrics`` and ``[metrics]
   enabled`` drop their routes (404); ``collect_sla_metrics`` drops ``/sla``;
   ``collect_scaling_metrics`` drops ``/metrics/autoscaler``; writes need ``[web] token``.
4. Turn errors into answers: Redis unreachable (or any other Redis error) is 503 with the
   reason, never 500; bad query parameters 400; handlers run in a thread (redis-py blocks).

Why Starlette and not FastAPI: the routes take no typed bodies worth validating (one small
JSON object), and the table below already yields the OpenAPI document, so FastAPI's pydantic
layer would be a second large dependency for nothing the API uses.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..config import TaskQueueConfig
from . import actions, schedules, views
from .context import REDIS_DOWN, Context, load_config, reason
from .dashboard import dashboard_routes
from .prom import render

Handler = Callable[..., Any]
log = logging.getLogger("taskqueue.web")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    group: str  # health | metrics | sla | autoscaler | registry | jobs | admin
    write: bool = False
    query: tuple[str, ...] = ()
    #: Extra statuses it may answer, besides 200, 503 (Redis down) and the write refusals.
    statuses: tuple[int, ...] = field(default=())


def _prometheus(ctx: Context, req: Request) -> Response:
    body, ctype = render(ctx)
    return Response(body, media_type=ctype)


E = Endpoint
ROUTES: list[Endpoint] = [
    E("GET", "/health", views.health, "Component health (503 when Redis is unreachable)", "health"),
    E("GET", "/status", views.status, "System status, masters and queues", "health"),
    E("GET", "/uptime", views.uptime_view, "Uptime of this process, the masters and Redis", "health"),
    E("GET", "/stats", views.stats, "Exact counters since the namespace began", "metrics"),
    E("GET", "/metrics", views.metrics, "Every metric, with sla, alerts and autoscaler", "metrics"),
    E("GET", "/metrics/system", views.metrics_system, "Redis, memory and slot totals", "metrics"),
    E("GET", "/metrics/performance", views.metrics_performance, "Throughput, error rates and "
      "percentiles per window", "metrics"),
    E("GET", "/metrics/autoscaler", views.metrics_autoscaler, "Autoscaler state per master",
      "autoscaler"),
    E("GET", "/metrics/queues", views.metrics_queues, "Per-queue depth, counters, windows", "metrics"),
    E("GET", "/metrics/workers", views.metrics_workers, "Per-master and per-worker figures", "metrics"),
    E("GET", "/metrics/memory", views.metrics_memory, "Memory of workers and Redis", "metrics"),
    E("GET", "/metrics/summary", views.metrics_summary, "One-screen summary", "metrics"),
    E("GET", "/metrics/timeline", views.metrics_timeline, "Per-minute counters of the last hour",
      "metrics", query=("minutes",), statuses=(400,)),
    E("GET", "/metrics/prometheus", _prometheus, "Prometheus text format", "metrics"),
    E("GET", "/registered", views.registered, "Tasks the live workers registered", "registry"),
    E("GET", "/registry/info", views.registry_info, "Task registry details", "registry"),
    E("GET", "/alerts", views.alerts, "Active alerts", "health"),
    E("GET", "/sla", views.sla, "SLA status against [autoscaler.target_sla]", "sla"),
    E("GET", "/diagnostics", views.diagnostics, "Queue health analysis", "health"),
    E("GET", "/jobs/{id}", views.job, "One job's record", "jobs", statuses=(404,)),
    E("GET", "/queues/{name}/jobs", views.queue_jobs, "A page of a queue's jobs by state", "jobs",
      query=("state", "offset", "limit"), statuses=(400,)),
    E("GET", "/dead", views.dead, "The dead letter, newest first", "jobs",
      query=("queue", "offset", "limit"), statuses=(400,)),
    E("POST", "/dead/{id}/retry", actions.dead_retry, "Retry one dead job", "admin", True,
      statuses=(404,)),
    E("POST", "/dead/retry-all", actions.dead_retry_all, "Retry every dead job", "admin", True),
    E("DELETE", "/dead/{id}", actions.dead_delete, "Delete one dead job", "admin", True,
      statuses=(404,)),
    E("POST", "/queues/{name}/pause", actions.queue_pause, "Pause a queue", "admin", True,
      statuses=(400,)),
    E("POST", "/queues/{name}/resume", actions.queue_resume, "Resume a queue", "admin", True,
      statuses=(400,)),
    E("POST", "/queues/{name}/purge", actions.queue_purge, "Cancel a queue's waiting jobs",
      "admin", True, statuses=(400,)),
    E("GET", "/schedules", schedules.listing, "Periodic schedules: next and last firing, last "
      "job's outcome", "jobs"),
    E("POST", "/schedules/{name}/pause", schedules.pause, "Pause a periodic schedule", "admin",
      True, statuses=(404,)),
    E("POST", "/schedules/{name}/resume", schedules.resume, "Resume a paused schedule", "admin",
      True, statuses=(404,)),
    E("POST", "/schedules/{name}/run-now", schedules.run_now, "Enqueue one job of a schedule now",
      "admin", True, statuses=(404,)),
    E("POST", "/masters/{id}/scale", actions.master_scale, "Set or change a master's worker count",
      "admin", True, statuses=(400, 404, 409, 504)),
]  # fmt: skip


def enabled(ep: Endpoint, cfg: TaskQueueConfig) -> bool:
    """Whether the settings serve this route."""
    metrics_on = cfg.web.enable_metrics and cfg.metrics.enabled
    if ep.path == "/health":
        return bool(cfg.web.enable_health_check)
    if ep.group in ("metrics", "autoscaler", "sla") and not metrics_on:
        return False
    if ep.group == "sla" and not cfg.metrics.collect_sla_metrics:
        return False
    return not (ep.group == "autoscaler" and not cfg.metrics.collect_scaling_metrics)


def _answer(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status, body = result if isinstance(result, tuple) else (200, result)
    return JSONResponse(body, status_code=status)


def _endpoint(ctx: Context, ep: Endpoint) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            if ep.write:
                refused = actions.refusal(ctx, request)
                if refused:
                    headers = {"WWW-Authenticate": "Bearer"} if refused[0] == 401 else None
                    return JSONResponse(refused[1], status_code=refused[0], headers=headers)
            if ep.handler is actions.master_scale:
                body = await actions.scale_body(request)
                if isinstance(body, tuple):
                    return _answer(body)
                return _answer(await run_in_threadpool(ep.handler, ctx, request, body))
            return _answer(await run_in_threadpool(ep.handler, ctx, request))
        except REDIS_DOWN as exc:
            ctx.mark_down()
            return JSONResponse({"error": f"redis unreachable: {reason(exc)}"}, status_code=503)
        except redis.exceptions.RedisError as exc:  # an answer, not a crash (e.g. OOM, ACL)
            log.error("%s %s: %s", request.method, request.url.path, reason(exc))
            return JSONResponse({"error": f"redis error: {reason(exc)}"}, status_code=503)
        except views.BadParam as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    endpoint.__name__ = ep.handler.__name__
    return endpoint


def _join(prefix: str, path: str) -> str:
    return (prefix.rstrip("/") + path) or "/"


def build_routes(ctx: Context, prefix: str) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route(_join(prefix, ep.path), _endpoint(ctx, ep), methods=[ep.method])
        for ep in ROUTES
        if enabled(ep, ctx.cfg)
    ]
    doc = openapi(ctx.cfg, prefix)
    routes.append(Route(_join(prefix, "/openapi.json"), lambda r: JSONResponse(doc)))
    return routes


def create_app(
    config: TaskQueueConfig | str | None = None, *, redis_url: str | None = None,
    prometheus_at_root: bool = False, dashboard_at_root: bool = False,
) -> Starlette:  # fmt: skip
    """The taskqueue HTTP API as an ASGI app.

    ``config``: a ``TaskQueueConfig``, a path to a TOML/YAML file, or None (``$TASKQUEUE_CONFIG``
    and the environment). ``redis_url`` overrides ``[redis] url``. The routes live under
    ``[web] route_prefix``; ``prometheus_at_root`` also serves Prometheus text at ``/metrics``
    (the standalone server does). The dashboard page is served at ``<prefix>/``, and also at
    ``/`` with ``dashboard_at_root`` (the standalone server). ``app.state.taskqueue`` is the
    shared ``Context``.
    """
    cfg = load_config(config, redis_url)
    ctx = Context.build(cfg)
    prefix = str(cfg.web.route_prefix or "").rstrip("/")
    routes = build_routes(ctx, prefix)
    metrics_on = cfg.web.enable_metrics and cfg.metrics.enabled
    if prometheus_at_root and metrics_on and prefix:
        prom = Endpoint("GET", "/metrics", _prometheus, "Prometheus text format", "metrics")
        routes.append(Route("/metrics", _endpoint(ctx, prom), methods=["GET"]))
    routes += dashboard_routes(prefix, at_root=dashboard_at_root)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        ctx.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.taskqueue = ctx
    return app


# -- OpenAPI ---------------------------------------------------------------------------------

_DESCRIPTIONS = {200: "OK", 400: "Bad parameter", 401: "Missing or wrong bearer token",
                 403: "Writes disabled: no [web] token configured", 404: "Not found",
                 409: "Refused by the master", 503: "Redis unreachable (the reason is in the body)",
                 504: "The master did not answer in time"}  # fmt: skip
_JSON = {"application/json": {"schema": {"type": "object"}}}


def _operation(ep: Endpoint) -> dict[str, Any]:
    doc = (ep.handler.__doc__ or ep.summary).strip()
    statuses = sorted({200, 503, *ep.statuses, *((401, 403) if ep.write else ())})
    responses: dict[str, Any] = {}
    for s in statuses:
        content = _JSON
        if ep.handler is _prometheus and s == 200:
            content = {"text/plain": {"schema": {"type": "string"}}}
        responses[str(s)] = {"description": _DESCRIPTIONS[s], "content": content}
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in re.findall(r"{(\w+)}", ep.path)
    ] + [{"name": n, "in": "query", "required": False, "schema": _QUERY[n]} for n in ep.query]
    op: dict[str, Any] = {
        "operationId": ep.handler.__name__,
        "summary": ep.summary,
        "description": " ".join(doc.split()),
        "tags": [ep.group],
        "parameters": params,
        "responses": responses,
    }
    if ep.write:
        op["security"] = [{"bearer": []}]
    if ep.handler is actions.master_scale:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"workers": {"type": "integer", "minimum": 0, "maximum": 1024},
                           "delta": {"type": "integer", "minimum": -1024, "maximum": 1024}},
        }}}}  # fmt: skip
    return op


_QUERY: dict[str, dict[str, Any]] = {
    "minutes": {"type": "integer", "minimum": 1, "maximum": 120},
    "offset": {"type": "integer", "minimum": 0},
    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
    "state": {"type": "string", "enum": ["queued", "scheduled", "active", "dead"]},
    "queue": {"type": "string"},
}


def openapi(cfg: TaskQueueConfig, prefix: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes these settings serve."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in ROUTES:
        if enabled(ep, cfg):
            paths.setdefault(_join(prefix, ep.path), {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {"title": "taskqueue HTTP API", "version": __version__,
                 "description": "Health, metrics, SLA, alerts and administration of a taskqueue "
                                "namespace. Reads are open; writes need a bearer token."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }  # fmt: skip
