"""``tqctl autoscaler``: what each master's autoscaler sees and decided; pin and unpin by hand.

Duties:
1. ``status`` (the default): per master, from its status record in Redis: on/off, pinned, the
   current metrics against their thresholds (adapted and initial), cooldowns left, signals
   counted, the last decisions, and plain-language recommendations for the namespace.
2. ``history``: the namespace's scaling steps (``autoscaler:log``, newest first).
3. ``pin N`` / ``unpin``: a control command to the targeted masters (the same code path as
   ``tqctl scale``, which pins too).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..autoscaler.reader import get_scaling_recommendations
from .render import fmt, table

if TYPE_CHECKING:
    from .tqctl import Ctl

#: (metric key, threshold key, meaning) shown by ``status``.
ROWS = (
    ("queue_pressure", "queue_pressure", "weighted waiting jobs per worker"),
    ("flat", "flat_up", "waiting jobs per worker (scale_up_threshold)"),
    ("utilization", "worker_utilization", "busy share of job slots"),
    ("complexity", "task_complexity", "run time against its baseline"),
    ("error_rate", "error_rate", "failed share, last minute (blocks scale-up)"),
    ("memory_mb", "memory_mb", "USS MiB per worker (blocks scale-up)"),
)


def add_parser(subs: Any, sub: Any, targets: Any) -> None:
    a = sub(subs, "autoscaler", "the autoscaler: status, history, pin N, unpin",
            "tqctl autoscaler pin 8 --master web1:4242")  # fmt: skip
    acts = a.add_subparsers(dest="action", metavar="ACTION")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub(acts, "status", "metrics against thresholds, cooldowns, last decisions (default)",
            "tqctl autoscaler status --json")  # fmt: skip
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    s = sub(
        acts, "history", "the namespace's scaling steps, newest first", "tqctl autoscaler history"
    )
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    s = sub(
        acts, "pin", "hold a master at N workers and pause its autoscaler", "tqctl autoscaler pin 6"
    )
    s.add_argument("count", type=int)
    targets(s)
    targets(
        sub(
            acts,
            "unpin",
            "hand the worker count back to the autoscaler",
            "tqctl autoscaler unpin --all",
        )
    )


def run(c: Ctl) -> int:
    a = c.args
    if a.action == "pin":
        return c.command("autoscaler", {"pin": a.count})
    if a.action == "unpin":
        return c.command("autoscaler", {"unpin": True})
    if a.action == "history":
        raw = c.tq.redis.lrange(c.tq.keys.autoscaler_log, 0, max(a.limit, 1) - 1)
        steps = [json.loads(r) for r in raw]
        if a.json:
            c.out(steps)
        else:
            print(table([_step_row(s) for s in steps], [("when", "WHEN"), ("master", "MASTER"),
                  ("step", "STEP"), ("why", "WHY")]) if steps else "no scaling step yet")  # fmt: skip
        return 0
    masters = c.ctl.masters()
    advice = get_scaling_recommendations(c.tq)
    if a.json:
        c.out({"masters": [{"id": m["id"], "desired": m["desired"], "actual": m["actual"],
                            "autoscaler": m.get("autoscaler")} for m in masters],
               "recommendations": advice})  # fmt: skip
        return 0
    for m in masters:
        print(render_master(m))
    print("recommendations:\n" + "\n".join(f"  - {r}" for r in advice))
    return 0


def _step_row(s: dict[str, Any]) -> dict[str, Any]:
    when = datetime.fromtimestamp(s.get("at_ms", 0) / 1000).strftime("%Y-%m-%d %H:%M:%S")
    reasons = s.get("reasons") or []
    return {"when": when, "master": s.get("master"), "step": f"{s.get('action')} {s.get('from')} -> {s.get('to')}",
            "why": reasons[0] if reasons else ""}  # fmt: skip


def _n(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def render_master(m: dict[str, Any]) -> str:
    au = m.get("autoscaler") or {}
    head = f"master {m['id']}: {m['actual']}/{m['desired']} workers"
    if not au.get("enabled"):
        return head + "; autoscaler off (start the master with --enable-autoscaler)\n"
    state = f"PINNED at {au['pinned']} ({au['pinned_by']}); `tqctl autoscaler unpin` resumes" \
        if au.get("pinned") is not None else "deciding"  # fmt: skip
    lines = [f"{head}; autoscaler on, {state}; bounds {au['min_workers']}..{au['max_workers']}"]
    metrics, th, start = au.get("metrics") or {}, au["thresholds"], au["initial_thresholds"]
    rows = [{"metric": k, "now": _n(metrics.get(k)), "threshold": _n(th[t]),
             "initial": _n(start[t]) if start[t] != th[t] else "", "meaning": why} for k, t, why in ROWS]  # fmt: skip
    lines.append(table(rows, [("metric", "METRIC"), ("now", "NOW"), ("threshold", "THRESHOLD"),
                              ("initial", "INITIAL"), ("meaning", "MEANING")]))  # fmt: skip
    cd, sig = au["cooldown_left"], au["signals"]
    lines.append(f"cooldown left: up {fmt(cd['up'])}s, down {fmt(cd['down'])}s; signals: up {sig['up']}, "
                 f"down {sig['down']} of {sig['required']} needed")  # fmt: skip
    if au.get("adaptive"):
        adj = au.get("adjustments") or []
        lines.append(
            f"adaptive thresholds: {len(adj)} step(s)"
            + (f"; last: {adj[-1]['why']}" if adj else "")
        )
    for d in (au.get("history") or [])[-5:]:
        ago = time.time() - d["at"]
        lines.append(f"  {ago:5.0f}s ago  {d['action']:<4} {d['workers']} -> {d['target']}  "
                     f"[{d['outcome']}]  {'; '.join(d['reasons'])}")  # fmt: skip
    return "\n".join(lines) + "\n"
