"""The master's side of the autoscaler: sample, decide, claim, apply, tell.

Duties:
1. Every ``autoscaler.sample_interval`` seconds, while enabled and not quiet, draining, stopping
   or reloading: one read of the metrics snapshot (``autoscaler.reader.read``: its one-minute
   window) plus what the loop knows of its own workers (busy slots, USS memory) make a
   ``Sample``; nothing else polls.
2. ``decide`` (pure). A step that answers load is claimed namespace-wide first
   (``autoscale_claim.lua``): while another master's claim in that direction holds, this one
   holds too, so one burst seen by several masters is answered once per cooldown.
3. Apply through ``Arbiter.resize``: the same desired count ``tqctl scale`` and TTIN/TTOU set,
   so the loop spawns, or retires idle workers first (TERM: they finish their jobs). Memory
   pressure replaces the worker using the most memory (an idle one first) instead of scaling up.
4. Pins: ``tqctl autoscaler pin N`` and every manual scale pin the count and pause decisions
   (visibly) until ``unpin``.
5. Log each step (and each change of hold reasons) as ``scaling_decision``; keep the last ones
   for the status record (``describe``), where ``tqctl autoscaler`` and the HTTP API read them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..autoscaler import Decision, Policy, State, decide
from ..autoscaler.reader import Pool, read, sample_from_snapshot
from ..logs import scaling_decision

if TYPE_CHECKING:
    from .arbiter import Arbiter

log = logging.getLogger("taskqueue.master")
#: Decisions kept for the status record: steps (applied, refused, recycles), and holds apart,
#: so that holds never push steps out (the scaling-frequency alert counts the steps).
KEEP = 20
KEEP_HOLDS = 5
#: What makes a hold worth a log line and a history entry (each time it changes).
NOTABLE = ("pinned", "held back", "cooldown", "already at max_workers", "no idle worker")


class Autoscale:
    def __init__(self, master_id: str) -> None:
        self.id = master_id
        self.enabled = False
        self.pinned: int | None = None
        self.pinned_by = ""
        self.steps: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.holds: deque[dict[str, Any]] = deque(maxlen=KEEP_HOLDS)
        self.last: Decision | None = None
        self.next_at = 0.0
        self._last_hold: tuple[str, ...] = ()
        #: Decisions since start by outcome: up, down (applied), refused, recycle.
        self.counts = {"up": 0, "down": 0, "refused": 0, "recycle": 0}
        #: When each applied step of the last hour happened (the history keeps only ``KEEP``).
        self.applied: deque[float] = deque()

    def configure(self, cfg: Any) -> None:
        self.enabled = cfg.autoscaler.enabled
        self.interval = cfg.autoscaler.sample_interval
        self.policy = Policy.from_config(cfg)
        old = getattr(self, "state", None)
        self.state = State.initial(self.policy) if old is None else old.with_policy(self.policy)

    def bound(self, n: int) -> int:
        """Where a pool of ``n`` (e.g. ``initial_count``) starts: within min..max when enabled."""
        return self.policy.clamp(n) if self.enabled and self.pinned is None else max(n, 1)

    def next_due(self) -> float | None:
        return self.next_at if self.enabled else None

    # -- pins ----------------------------------------------------------------------------------
    def pin(self, n: int, why: str) -> None:
        if self.enabled:
            if self.pinned is None:
                log.warning("autoscaler paused: worker count pinned at %d (%s); `tqctl autoscaler "
                            "unpin` resumes it", n, why)  # fmt: skip
            self.pinned, self.pinned_by = n, why

    def unpin(self) -> str:
        if self.pinned is None:
            return "not pinned"
        was, self.pinned, self.pinned_by = self.pinned, None, ""
        self.next_at = 0.0
        log.info("autoscaler resumed (was pinned at %d)", was)
        return f"unpinned (was pinned at {was}); the autoscaler decides again"

    def command(self, m: Arbiter, pin: int | None, unpin: bool) -> tuple[bool, str, dict[str, Any]]:
        """``tqctl autoscaler``: status, ``pin N`` (pause at N workers) or ``unpin``."""
        if not self.enabled and (pin is not None or unpin):
            return (
                False,
                "the autoscaler is off on this master (start it with --enable-autoscaler)",
                {},
            )
        if pin is not None:
            ok, message, _ = m.scale(pin, "tqctl autoscaler pin")
            if ok:
                message += f"; autoscaler paused at {pin}"
            return ok, message, self.describe(time.monotonic())
        message = self.unpin() if unpin else "autoscaler " + ("on" if self.enabled else "off")
        return True, message, self.describe(time.monotonic())

    # -- one sample ----------------------------------------------------------------------------
    def tick(self, now: float, m: Arbiter) -> None:
        if not self.enabled or now < self.next_at:
            return
        self.next_at = now + self.interval
        if m.quiet or m.draining or m.stopping or m.reloader.active:
            return
        assert m.redis is not None
        queues = m.spec.queues
        snap = m.redis.call(lambda: read(m.redis.client, m.keys))
        if snap is None:
            return  # Redis is down; the guard logs it once
        sample = sample_from_snapshot(snap, queues, self._pool(m), now, self.id)
        decision, state = decide(sample, self.state, self.policy, self.pinned)
        outcome = self._claim(decision, m)
        if outcome.startswith("skipped"):
            return
        # A refused claim counts as a step too: another master just answered this load.
        self.state, self.last = state, decision
        if outcome == "applied":
            self.counts[decision.action] += 1
            m.resize(decision.target, f"autoscaler: {decision.reasons[0]}")
        elif outcome == "recycle":
            self.counts["recycle"] += 1
            self.recycle(m, now)
        elif outcome.startswith("refused"):
            self.counts["refused"] += 1
        self._tell(decision, outcome)

    def _pool(self, m: Arbiter) -> Pool:
        ws = m.current()
        uss = [w.mem[1] / 2**20 for w in ws if w.mem[1]]
        return Pool(
            workers=m.desired, slots=m.desired * m.spec.concurrency, busy=sum(w.busy for w in ws),
            idle=sum(1 for w in ws if w.up and not w.busy and not w.jobs) + max(0, m.desired - len(ws)),
            memory_mb=sum(uss) / len(uss) if uss else None,
        )  # fmt: skip

    def _claim(self, d: Decision, m: Arbiter) -> str:
        if d.action == "hold":
            return "recycle" if d.recycle else "held"
        cooldown = (
            self.policy.scale_up_cooldown if d.action == "up" else self.policy.scale_down_cooldown
        )
        claim_ms = int(max(cooldown, self.interval) * 1000) if d.shared else 0
        record = json.dumps({"action": d.action, "count": d.count, "from": d.workers, "to": d.target,
                             "reasons": list(d.reasons)})  # fmt: skip
        got = m.redis.script(m.broker.autoscale_claim(self.id, d.action, claim_ms, record))  # type: ignore[union-attr]
        if got is None:
            return "skipped: Redis unavailable"
        granted, holder, left = got
        return (
            "applied"
            if granted
            else f"refused: {holder} scaled {d.action} ({left / 1000:.0f}s of its claim left)"
        )

    def recycle(self, m: Arbiter, now: float) -> None:
        """Replace the worker using the most memory, an idle one if any: TERM, so it finishes
        its jobs first; the loop starts its replacement at once (the count is unchanged)."""
        ws = [w for w in m.current() if w.up]
        idle = [w for w in ws if not w.busy and not w.jobs]
        if ws:
            w = max(idle or ws, key=lambda w: w.mem[1])
            log.info("recycling worker %d (pid %d, %d MiB USS): memory pressure", w.index, w.pid,
                     w.mem[1] // 2**20)  # fmt: skip
            w.retire("recycled: memory pressure", now + m.spec.grace + 2.0)

    def _tell(self, d: Decision, outcome: str) -> None:
        """Log steps, refusals, recycles, and each change in why a signal is held back
        (blocked, cooldown, pinned, at max, no idle worker); not the quiet samples between."""
        notable = tuple(n for n in NOTABLE if any(n in r for r in d.reasons))
        if d.action in ("up", "down") and outcome == "applied":
            self.applied.append(time.time())
        if d.action != "hold" or outcome != "held" or (notable and notable != self._last_hold):
            entry = {"at": time.time(), "outcome": outcome, **d.as_dict()}
            (self.holds if d.action == "hold" and outcome == "held" else self.steps).append(entry)
            kind = {"up": "scale_up", "down": "scale_down"}.get(d.action, "hold")
            scaling_decision(log, kind, list(d.reasons), outcome=outcome, workers=d.workers,
                             target=d.target, metrics=d.signals.as_dict(),
                             thresholds=d.thresholds.as_dict())  # fmt: skip
        self._last_hold = notable

    # -- status ----------------------------------------------------------------------------------
    def scalings_last_hour(self, wall_now: float) -> int:
        while self.applied and self.applied[0] < wall_now - 3600:
            self.applied.popleft()
        return len(self.applied)

    def describe(self, now: float) -> dict[str, Any]:
        """The ``autoscaler`` object of the master's status record (``{"enabled": false}`` when
        off): ``pinned`` (count or null) and ``pinned_by``, ``min_workers``/``max_workers``,
        ``metrics`` (the last sample's signals), ``thresholds`` (current, adapted) and
        ``initial_thresholds``, ``adaptive``, ``adjustments`` (at, why, changes), ``sla``,
        ``baseline_ms`` (run-time baseline), ``cooldown_left`` {up, down} (s), ``signals``
        {up, down, required} (consecutive counts), ``decisions`` {up, down, refused, recycle}
        (counts since start), ``scalings_last_hour`` (applied steps), ``last`` and ``history``
        (recent entries: at (epoch s), outcome, action, count, workers, target, reasons, metrics,
        thresholds, recycle)."""
        if not self.enabled:
            return {"enabled": False}
        p, st = self.policy, self.state
        history = sorted([*self.steps, *self.holds], key=lambda e: e["at"])
        return {
            "enabled": True, "pinned": self.pinned, "pinned_by": self.pinned_by,
            "min_workers": p.min_workers, "max_workers": p.max_workers,
            "metrics": self.last.signals.as_dict() if self.last else None,
            "thresholds": st.thresholds.as_dict(), "initial_thresholds": st.start.as_dict(),
            "adaptive": p.adaptive, "adjustments": [a.as_dict() for a in st.adjustments],
            "sla": vars(p.sla), "baseline_ms": st.baseline_ms,
            "cooldown_left": {k: round(v, 1) for k, v in st.cooldown_left(p, now).items()},
            "signals": {"up": st.up_streak, "down": st.down_streak, "required": p.consecutive},
            "decisions": dict(self.counts), "scalings_last_hour": self.scalings_last_hour(time.time()),
            "last": history[-1] if history else None, "history": history,
        }  # fmt: skip
