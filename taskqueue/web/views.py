"""Read-only handlers of the HTTP API: each returns the JSON body of one route.

Every handler takes the shared ``Context`` and the request, reads Redis (a metrics snapshot,
two round trips) and returns a dict; ``(status, dict)`` for another status. A Redis outage
raises one of ``context.REDIS_DOWN``, which the app answers with 503 and the reason.
The shapes are documented by each docstring (they are the OpenAPI descriptions).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
from starlette.requests import Request

from .. import __version__
from .. import registered as registered_tasks
from ..control.joblist import FIELDS, MAX_LIMIT, job_dict, job_page
from ..control.timeline import read_timeline
from ..metrics import MetricsSnapshot
from ..metrics.alerts import evaluate
from ..metrics.diagnostics import diagnose
from ..metrics.reader import read_lateness
from ..metrics.sla import sla_status
from .context import REDIS_DOWN, Context, reason, uptime

Body = dict[str, Any] | tuple[int, dict[str, Any]]
#: Parts of a master's autoscaler state served only with collect_adaptive_threshold_metrics.
ADAPTIVE_KEYS = ("initial_thresholds", "adjustments")


def _sla(ctx: Context, snap: MetricsSnapshot) -> dict[str, Any] | None:
    if not ctx.cfg.metrics.collect_sla_metrics:
        return None
    return sla_status(snap, ctx.targets)


def _alerts(ctx: Context, snap: MetricsSnapshot) -> list[dict[str, Any]]:
    found = evaluate(snap, ctx.thresholds, ctx.priority)
    return [a.as_dict() for a in ctx.stamp(found, snap.taken_ms)]


def _autoscaler(ctx: Context, snap: MetricsSnapshot) -> dict[str, Any]:
    adaptive = ctx.cfg.metrics.collect_adaptive_threshold_metrics
    masters = {}
    for m in snap.masters:
        state = dict(m.autoscaler) if m.autoscaler is not None else None
        if state is not None and not adaptive:
            for key in ADAPTIVE_KEYS:
                state.pop(key, None)
        masters[m.id] = {"workers": m.actual, "desired": m.desired, "state": state}
    return {
        "enabled": bool(ctx.cfg.autoscaler.enabled),
        "config": ctx.cfg.autoscaler.as_dict(),
        "masters": masters,
    }


def health(ctx: Context, req: Request) -> Body:
    """Component health: ``{"status": healthy|degraded|unhealthy, "reason", "components":
    {"redis", "masters", "workers", "scheduler"}, "sla_metrics"}``. HTTP 503 with the reason
    when Redis is unreachable; ``degraded`` when jobs wait that no live master consumes, or a
    master reports trouble (Redis outage, spawning halted)."""
    t = time.perf_counter()
    try:
        ctx.redis.ping()
        latency = round((time.perf_counter() - t) * 1000, 2)
        snap = ctx.snapshot()
        _, overdue = read_lateness(ctx.redis, ctx.keys, snap.queues, snap.taken_ms)
    except REDIS_DOWN as exc:
        ctx.mark_down()
        why = f"redis unreachable: {reason(exc)}"
        return 503, {
            "status": "unhealthy", "reason": why,
            "components": {"redis": {"status": "down", "error": reason(exc),
                                     "since_ms": ctx.redis_down_since}},
            "sla_metrics": None,
        }  # fmt: skip
    consumed = {q for m in snap.masters for q in m.queues}
    orphans = sorted(n for n, q in snap.queues.items() if q.queued and n not in consumed)
    troubled = [m.id for m in snap.masters if m.redis_down or m.spawn_halted]
    late = sum(overdue.values())
    schedulers = [
        m.id for m in snap.masters
        if ((m.record.get("config") or {}).get("scheduler") or {}).get("enabled")
    ]  # fmt: skip
    problems = []
    if orphans:
        problems.append(f"jobs wait in {', '.join(orphans)} and no live master consumes them")
    if troubled:
        problems.append(f"masters report trouble: {', '.join(troubled)}")
    return {
        "status": "degraded" if problems else "healthy",
        "reason": "; ".join(problems) or None,
        "checked_ms": snap.taken_ms,
        "components": {
            "redis": {"status": "ok", "latency_ms": latency},
            "masters": {
                "status": "degraded" if troubled else "ok" if snap.masters else "none",
                "count": len(snap.masters),
                "ids": [m.id for m in snap.masters],
            },
            "workers": {
                "status": "ok" if snap.workers else "none",
                "count": len(snap.workers),
                "busy_slots": snap.busy_slots,
                "total_slots": snap.total_slots,
            },
            "scheduler": {
                "status": "late" if late else "ok",
                "overdue_jobs": late,
                "promoted_by": "every worker's fetch",
                "enabled_on": schedulers,
            },
        },  # fmt: skip
        "sla_metrics": _sla(ctx, snap),
    }


def status(ctx: Context, req: Request) -> Body:
    """System status: ``{"status", "version", "uptime_s", "masters": [...], "queues":
    {name: {queued, scheduled, active, paused}}, "dead", "busy_slots", "total_slots"}``."""
    snap = ctx.snapshot()
    return {
        "status": "ok", "version": __version__, "uptime_s": uptime(ctx.started),
        "taken_ms": snap.taken_ms,
        "masters": [m.as_dict(snap.taken_ms) for m in snap.masters],
        "queues": {n: {"queued": q.queued, "scheduled": q.scheduled, "active": q.active,
                       "paused": q.paused} for n, q in sorted(snap.queues.items())},
        "dead": snap.dead, "busy_slots": snap.busy_slots, "total_slots": snap.total_slots,
    }  # fmt: skip


def stats(ctx: Context, req: Request) -> Body:
    """Counters since the namespace began, exact: ``{"overall": {counter: n}, "queues":
    {name: {counter: n}}, "tasks": {name: {counter: n}}, "dead"}``."""
    snap = ctx.snapshot()
    d = snap.as_dict()
    return {
        "overall": d["overall"]["totals"],
        "queues": {n: q["totals"] for n, q in d["queues"].items()},
        "tasks": {n: t["totals"] for n, t in d["tasks"].items()},
        "dead": snap.dead,
    }


def metrics(ctx: Context, req: Request) -> Body:
    """Everything: the snapshot (``overall``, ``queues``, ``tasks``, ``masters``; windows of 1,
    5, 15 and 60 minutes with counts, throughput, error rate, run and wait p50/p95/p99),
    ``sla``, ``alerts`` and ``autoscaler`` (per master, the state its autoscaler publishes)."""
    snap = ctx.snapshot()
    out = snap.as_dict()
    out["sla"] = _sla(ctx, snap)
    out["alerts"] = _alerts(ctx, snap)
    if ctx.cfg.metrics.collect_scaling_metrics:
        out["autoscaler"] = _autoscaler(ctx, snap)
    return out


def metrics_system(ctx: Context, req: Request) -> Body:
    """System metrics: ``{"redis": {version, used_memory, connected_clients, uptime_s},
    "memory": {rss, uss} of all workers, "masters", "workers", "busy_slots", "total_slots",
    "utilization", "web": {pid, rss, uptime_s}}`` (bytes)."""
    snap = ctx.snapshot()
    info = ctx.redis.info()
    me = psutil.Process(os.getpid())
    return {
        "redis": {"version": info.get("redis_version"), "used_memory": info.get("used_memory"),
                  "connected_clients": info.get("connected_clients"),
                  "uptime_s": info.get("uptime_in_seconds")},
        "memory": {"rss": sum(m.rss for m in snap.masters), "uss": sum(m.uss for m in snap.masters)},
        "masters": len(snap.masters), "workers": len(snap.workers),
        "busy_slots": snap.busy_slots, "total_slots": snap.total_slots,
        "utilization": snap.as_dict()["utilization"],
        "web": {"pid": me.pid, "rss": me.memory_info().rss, "uptime_s": uptime(ctx.started)},
    }  # fmt: skip


def metrics_performance(ctx: Context, req: Request) -> Body:
    """Performance report: ``{"overall": {minutes: window}, "queues": {name: {minutes:
    window}}, "tasks": {...}, "sla"}``; a window has counts, ``throughput_per_s``,
    ``error_rate``, ``success_rate``, ``run_ms`` and ``wait_ms`` (count, mean, p50, p95, p99)."""
    snap = ctx.snapshot()
    d = snap.as_dict()
    return {
        "overall": d["overall"]["windows"],
        "queues": {n: q["windows"] for n, q in d["queues"].items()},
        "tasks": {n: t["windows"] for n, t in d["tasks"].items()},
        "sla": _sla(ctx, snap),
    }


def metrics_autoscaler(ctx: Context, req: Request) -> Body:
    """Autoscaler view: ``{"enabled", "config", "masters": {id: {"workers", "desired",
    "state"}}}``; ``state`` is what each master's autoscaler publishes (None if it has none)."""
    return _autoscaler(ctx, ctx.snapshot())


def metrics_queues(ctx: Context, req: Request) -> Body:
    """Per queue: ``{name: {queued, scheduled, active, depth, paused, trend_per_s, totals,
    windows}}``."""
    return ctx.snapshot().as_dict()["queues"]


def metrics_workers(ctx: Context, req: Request) -> Body:
    """Per master and worker: ``{"masters": [{id, host, busy, slots, utilization, rss, uss,
    processed, uptime_s, ...}], "workers": [{master, index, pid, state, busy, slots,
    utilization, rss, uss, cpu, processed, jobs}]}``."""
    snap = ctx.snapshot()
    masters = [m.as_dict(snap.taken_ms) for m in snap.masters]
    workers = [w for m in masters for w in m.pop("workers")]
    return {"masters": masters, "workers": workers}


def metrics_memory(ctx: Context, req: Request) -> Body:
    """Memory in bytes: ``{"total": {rss, uss}, "masters": {id: {rss, uss}}, "workers":
    [{master, index, pid, rss, uss}], "redis": {used_memory, used_memory_peak, maxmemory}}``."""
    snap = ctx.snapshot()
    mem = ctx.redis.info("memory")
    return {
        "total": {"rss": sum(m.rss for m in snap.masters), "uss": sum(m.uss for m in snap.masters)},
        "masters": {m.id: {"rss": m.rss, "uss": m.uss} for m in snap.masters},
        "workers": [{"master": w.master, "index": w.index, "pid": w.pid, "rss": w.rss,
                     "uss": w.uss} for w in snap.workers],
        "redis": {k: mem.get(k) for k in ("used_memory", "used_memory_peak", "maxmemory")},
    }  # fmt: skip


def metrics_summary(ctx: Context, req: Request) -> Body:
    """One-screen summary: ``{"jobs": totals, "throughput_per_s": {"1m", "5m"}, "error_rate_5m",
    "run_p95_ms_5m", "wait_p95_ms_5m", "queued", "scheduled", "active", "dead", "masters",
    "workers", "busy_slots", "total_slots", "alerts"}``."""
    snap = ctx.snapshot()
    w1, w5 = snap.window(1), snap.window(5)
    return {
        "jobs": snap.as_dict()["overall"]["totals"],
        "throughput_per_s": {"1m": round(w1.throughput, 4), "5m": round(w5.throughput, 4)},
        "error_rate_5m": w5.as_dict()["error_rate"],
        "run_p95_ms_5m": w5.run_ms.summary()["p95"],
        "wait_p95_ms_5m": w5.wait_ms.summary()["p95"],
        "queued": snap.overall.queued, "scheduled": snap.overall.scheduled,
        "active": snap.overall.active, "dead": snap.dead,
        "masters": len(snap.masters), "workers": len(snap.workers),
        "busy_slots": snap.busy_slots, "total_slots": snap.total_slots,
        "alerts": len(evaluate(snap, ctx.thresholds, ctx.priority)),
    }  # fmt: skip


def metrics_timeline(ctx: Context, req: Request) -> Body:
    """Per-minute counters of the last ``minutes`` (query, 1..120, default 60) minutes:
    ``{"now", "minutes": [epoch s], "total": {counter: [...]}, "queues": {...}}``."""
    minutes = _int_param(req, "minutes", 60, 1, 120)
    return read_timeline(ctx.redis, ctx.keys, minutes)


def _registered(ctx: Context) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(live tasks by name, live publishers by id) from the registered-tasks hash
    (``taskqueue/registered.py``): the one list that workers also consult for unknown tasks."""
    entries, _ = registered_tasks.live_entries(ctx.redis.hgetall(ctx.keys.registered))
    return registered_tasks.by_task(entries), entries


def registered(ctx: Context, req: Request) -> Body:
    """Tasks the live workers can run, as their masters and standalone workers publish them:
    ``{"tasks": [{name, queue, max_retries, timeout, dead_letter, result_ttl, retry_backoff,
    retry_backoff_max, is_async, origin, publishers: [master ids or worker names],
    consistent}], "count"}``; ``consistent`` is false when publishers register the name with
    different options (a rolling deploy)."""
    tasks = list(_registered(ctx)[0].values())
    return {"tasks": tasks, "count": len(tasks)}


def registry_info(ctx: Context, req: Request) -> Body:
    """Registry details: ``{"tasks_total", "publishers": {id: {"tasks", "queues"}},
    "inconsistent": [names], "unconsumed": [names whose queue no live publisher reads],
    "auto_register", "source"}``."""
    tasks, entries = _registered(ctx)
    consumed = {q for rec in entries.values() for q in rec.get("queues", ())}
    return {
        "tasks_total": len(tasks),
        "publishers": {who: {"tasks": len(rec.get("tasks", ())), "queues": list(rec.get("queues", ()))}
                       for who, rec in sorted(entries.items())},
        "inconsistent": [n for n, t in tasks.items() if not t["consistent"]],
        "unconsumed": [n for n, t in tasks.items() if t.get("queue") not in consumed],
        "auto_register": bool(ctx.cfg.auto_register.enabled),
        "source": "the registered-tasks hash: each live master and standalone worker's tasks, "
                  "rewritten every 10 s and after a reload",
    }  # fmt: skip


def alerts(ctx: Context, req: Request) -> Body:
    """Active alerts: ``{"alerts": [{key, name, severity, message, value, threshold,
    since_ms}], "count"}``; Redis unreachable is itself an alert (HTTP 200)."""
    try:
        snap = ctx.snapshot()
    except REDIS_DOWN as exc:
        return {"alerts": [ctx.down_alert(exc).as_dict()], "count": 1}
    found = _alerts(ctx, snap)
    return {"alerts": found, "count": len(found)}


def sla(ctx: Context, req: Request) -> Body:
    """SLA status against ``[autoscaler.target_sla]``: ``{"window_minutes", "status":
    ok|violated|no_data, "violated": [names], "minutes_observed", "targets": [{name, target,
    kind, value, percent_of_target, status, violations}]}``."""
    return _sla(ctx, ctx.snapshot()) or {}


def diagnostics(ctx: Context, req: Request) -> Body:
    """Queue health analysis: ``{"healthy", "findings": [{queue, problem, severity, count,
    advice}], "queues": {...}, "dead_letter", "masters"}``; problems: stuck_leases,
    paused_with_jobs, no_consumer, overdue_scheduled, dead_letter_growth."""
    snap = ctx.snapshot()
    expired, overdue = read_lateness(ctx.redis, ctx.keys, snap.queues, snap.taken_ms)
    return diagnose(snap, expired, overdue)


def uptime_view(ctx: Context, req: Request) -> Body:
    """``{"web": {pid, started, uptime_s}, "masters": {id: {started, uptime_s}}, "redis":
    {uptime_s}, "version"}``."""
    snap = ctx.snapshot()
    info = ctx.redis.info("server")
    return {
        "version": __version__,
        "web": {"pid": os.getpid(), "started": ctx.started, "uptime_s": uptime(ctx.started)},
        "masters": {m.id: {"started": m.started, "uptime_s": round(m.uptime_s(snap.taken_ms), 1)}
                    for m in snap.masters},
        "redis": {"uptime_s": info.get("uptime_in_seconds")},
    }  # fmt: skip


def job(ctx: Context, req: Request) -> Body:
    """One job's record: ``{id, task, queue, state, attempts, failures, stalls, max_retries,
    enqueued_ms, started_ms, finished_ms, worker, error, traceback, history}``; 404 if
    unknown."""
    job_id = req.path_params["id"]
    values = ctx.redis.hmget(ctx.keys.job(job_id), FIELDS)
    if all(v is None for v in values):
        return 404, {"error": f"no job {job_id!r} (never enqueued, or its record expired)"}
    return job_dict(job_id, values)


def dead(ctx: Context, req: Request) -> Body:
    """The dead letter, newest first: ``{"state": "dead", "queue", "offset", "limit", "total",
    "jobs": [job + score_ms (time of death)]}``; query ``queue``, ``offset``, ``limit``."""
    return _page(ctx, req, "dead", req.query_params.get("queue"))


def queue_jobs(ctx: Context, req: Request) -> Body:
    """One page of a queue's jobs by ``state`` (query: queued, scheduled, active, dead;
    default queued), ``offset``, ``limit`` (1..200): same shape as ``GET /dead``."""
    return _page(ctx, req, req.query_params.get("state", "queued"), req.path_params["name"])


def _page(ctx: Context, req: Request, state: str, queue: str | None) -> Body:
    try:
        offset = _int_param(req, "offset", 0, 0, 10**9)
        limit = _int_param(req, "limit", 20, 1, MAX_LIMIT)
        return job_page(ctx.redis, ctx.keys, state, queue, offset, limit)
    except ValueError as exc:
        return 400, {"error": str(exc)}


class BadParam(ValueError):
    """A query parameter out of range or not a number."""


def _int_param(req: Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(f"query parameter {name!r} must be an integer, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadParam(f"query parameter {name!r} must be in {low}..{high}, got {value}")
    return value
