"""Write actions of the HTTP API, and the bearer-token check that guards them.

Every write needs ``Authorization: Bearer <[web] token>``. With no token configured, writes are
disabled (403); a missing or wrong token is refused with 401. A refused request changes
nothing: the check runs before any Redis call. Tokens are compared in constant time and never
logged or echoed.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request

from ..control.client import ControlClient, NoSuchMaster, ReplyTimeout
from ..errors import InvalidQueueName
from ..jobs import check_queue
from .context import Context

Body = dict[str, Any] | tuple[int, dict[str, Any]]


def refusal(ctx: Context, req: Request) -> tuple[int, dict[str, Any]] | None:
    """None when the request may write, else (401|403, body)."""
    token = str(ctx.cfg.web.token or "")
    if not token:
        return 403, {"error": "write actions are disabled: no [web] token is configured "
                              "(set [web] token or TASKQUEUE_WEB__TOKEN)"}  # fmt: skip
    scheme, _, given = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return 401, {"error": "this action needs the header 'Authorization: Bearer <token>'"}
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return 401, {"error": "wrong bearer token"}
    return None


def _queue(req: Request) -> str | tuple[int, dict[str, Any]]:
    try:
        return check_queue(req.path_params["name"])
    except InvalidQueueName as exc:
        return 400, {"error": str(exc)}


def dead_retry(ctx: Context, req: Request) -> Body:
    """Move one dead job back to its queue with fresh retries: ``{"retried": 1}``; 404 if it
    is not in the dead letter."""
    job_id = req.path_params["id"]
    if not ctx.tq.retry_dead(job_id):
        return 404, {"error": f"no job {job_id!r} in the dead letter"}
    return {"retried": 1, "id": job_id}


def dead_retry_all(ctx: Context, req: Request) -> Body:
    """Move every dead job back to its queue with fresh retries (in batches of at most 1,000 a
    script call): ``{"retried": n}``."""
    return {"retried": ctx.tq.retry_dead()}


def dead_delete(ctx: Context, req: Request) -> Body:
    """Delete one dead job and its record: ``{"deleted": 1}``; 404 if it is not there."""
    job_id = req.path_params["id"]
    if not ctx.tq.delete_dead(job_id):
        return 404, {"error": f"no job {job_id!r} in the dead letter"}
    return {"deleted": 1, "id": job_id}


def queue_pause(ctx: Context, req: Request) -> Body:
    """Pause a queue (workers on every host stop taking its jobs): ``{"queue", "paused":
    true, "changed"}``."""
    q = _queue(req)
    if isinstance(q, tuple):
        return q
    return {"queue": q, "paused": True, "changed": bool(ctx.tq.pause(q))}


def queue_resume(ctx: Context, req: Request) -> Body:
    """Resume a paused queue: ``{"queue", "paused": false, "changed"}``."""
    q = _queue(req)
    if isinstance(q, tuple):
        return q
    return {"queue": q, "paused": False, "changed": bool(ctx.tq.resume(q))}


def queue_purge(ctx: Context, req: Request) -> Body:
    """Cancel every waiting (queued and scheduled) job of a queue: ``{"queue", "purged": n}``."""
    q = _queue(req)
    if isinstance(q, tuple):
        return q
    return {"queue": q, "purged": ctx.tq.purge(q)}


async def scale_body(req: Request) -> dict[str, Any] | tuple[int, dict[str, Any]]:
    """The JSON body of a scale request: ``{"workers": n}`` or ``{"delta": n}``."""
    try:
        body = json.loads(await req.body() or b"{}")
    except ValueError:
        return 400, {"error": 'the body must be JSON: {"workers": N} or {"delta": N}'}
    if not isinstance(body, dict):
        return 400, {"error": 'the body must be a JSON object: {"workers": N} or {"delta": N}'}
    for key in ("workers", "delta"):
        v = body.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or abs(v) > 1024):
            return 400, {"error": f"{key} must be an integer in -1024..1024, got {v!r}"}
    if ("workers" in body) == ("delta" in body):
        return 400, {"error": 'give exactly one of {"workers": N} or {"delta": N}'}
    return body


def master_scale(ctx: Context, req: Request, body: dict[str, Any]) -> Body:
    """Ask one master to run N workers (``{"workers": N}``) or N more/fewer (``{"delta": N}``):
    ``{"master", "ok", "message"}``; 404 if no such master runs, 504 if it does not answer
    within 5 s, 409 if it refuses (e.g. out of range)."""
    master = req.path_params["id"]
    control = ControlClient(ctx.redis, ctx.keys)
    args = {"n": body["workers"]} if "workers" in body else {"delta": body["delta"]}
    try:
        control.targets(master, False)
        reply = control.send(master, "scale", args, timeout=5.0)
    except NoSuchMaster as exc:
        return 404, {"error": str(exc)}
    except ReplyTimeout as exc:
        return 504, {"error": str(exc)}
    out = {"master": master, "ok": reply.ok, "message": reply.message}
    return out if reply.ok else (409, out)
