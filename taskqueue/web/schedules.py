"""``/schedules`` routes of the HTTP API: the periodic schedules, as ``tqctl schedules`` shows
them, and the same pause / resume / run-now actions (writes: bearer token, like every write).
The data and the actions live in ``taskqueue/schedules/admin.py``; this module only maps them
to HTTP answers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..schedules.admin import NoSuchSchedule, ScheduleAdmin, list_schedules
from .context import Context

Body = dict[str, Any] | tuple[int, dict[str, Any]]


def listing(ctx: Context, req: Request) -> Body:
    """Every schedule: spec, next and last firing, paused, misfires, last job's outcome."""
    return {"schedules": list_schedules(ctx.redis, ctx.keys)}


def _act(ctx: Context, req: Request, action: str) -> Body:
    name = req.path_params["name"]
    admin = ScheduleAdmin(ctx.redis, ctx.keys)
    try:
        if action == "run-now":
            return {"name": name, "job": admin.run_now(name)}
        changed = admin.pause(name) if action == "pause" else admin.resume(name)
    except NoSuchSchedule as exc:
        return 404, {"error": str(exc)}
    return {"name": name, "paused": action == "pause", "changed": changed}


def pause(ctx: Context, req: Request) -> Body:
    """Stop a schedule from firing on every master."""
    return _act(ctx, req, "pause")


def resume(ctx: Context, req: Request) -> Body:
    """Fire a paused schedule again, from its next slot after now."""
    return _act(ctx, req, "resume")


def run_now(ctx: Context, req: Request) -> Body:
    """Enqueue one job of a schedule now; its slots do not move."""
    return _act(ctx, req, "run-now")
