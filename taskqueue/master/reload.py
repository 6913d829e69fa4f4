"""Rolling reload (HUP, ``tqctl reload``): a new generation first, the old one drained after.

Duties:
1. ``start``: read and validate the configuration again (a bad one is logged and the old one
   kept), re-import the task modules (changed code, new modules; see ``taskload``), publish
   the registered tasks, then start a new generation of workers, forked with the new code.
2. ``progress`` (each loop pass): retire one old worker for each new worker that reports up,
   oldest first, so capacity never drops; done once no old worker is left working.
3. If the new generation cannot boot (the boot guard halts), kill it and keep the old one.
sd_notify: RELOADING=1 when it starts, READY=1 when it ends (either way).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .periodic import schedule_records
from .taskload import load_tasks

if TYPE_CHECKING:
    from .arbiter import Arbiter

log = logging.getLogger("taskqueue.master")


class Reloader:
    def __init__(self, master: Arbiter) -> None:
        self.m = master
        self.old: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.old is not None

    def start(self, why: str) -> tuple[bool, str, dict[str, Any]]:
        m = self.m
        if m.stopping:
            return False, "the master is stopping", {}
        if self.old is not None:
            return False, "a reload is already in progress", {}
        m.notify.reloading()
        try:
            cfg = m.load_config()
            load_tasks(cfg, reload=True)  # changed task code: the new generation forks it
            schedule_records(cfg)  # a schedule naming an unknown task is refused here too
        except (ConfigError, ImportError, Exception) as exc:  # noqa: BLE001 - keep the old one
            m.notify.ready()
            log.error("reload (%s) rejected, keeping the running configuration: %s", why, exc)
            return False, f"new configuration rejected, old one kept: {exc}", {}
        self.old = {"cfg": m.cfg, "generation": m.generation, "desired": m.desired}
        if cfg.workers.initial_count != m.cfg.workers.initial_count:
            m.desired = cfg.workers.initial_count
        m.apply_config(cfg)
        m.generation += 1
        m.boot.reset()
        m.next_beat, m.beats = 0.0, 0  # publish the registered tasks now (an index beat)
        log.info("reload (%s): starting generation %d with %d workers", why, m.generation,
                 m.desired)  # fmt: skip
        return True, f"reloading: generation {m.generation}", {"generation": m.generation}

    def progress(self, now: float) -> None:
        m = self.m
        if self.old is None:
            return
        old = sorted((w for w in m.workers.values()
                      if w.generation < m.generation and not w.retiring),
                     key=lambda w: w.spawned)  # fmt: skip
        if m.boot.halted or m.stopping:
            self._rollback(old)
            return
        up = sum(1 for w in m.current() if w.up)
        for w in old[: max(0, len(old) - max(0, m.desired - up))]:
            w.retire("replaced by reload", now + m.spec.grace + 2.0)
        if up >= m.desired and not any(not w.retiring for w in old):
            log.info("reload done: generation %d running %d workers", m.generation, up)
            self.old = None
            m.notify.ready(f"reloaded: generation {m.generation}")

    def _rollback(self, old: list) -> None:
        m = self.m
        assert self.old is not None
        if not m.stopping:
            log.error("generation %d failed to boot; keeping generation %d", m.generation,
                      self.old["generation"])  # fmt: skip
        for w in m.current():
            w.retiring, w.reason = True, "reload failed"
            w.kill_group()
        m.desired = self.old["desired"]
        m.apply_config(self.old["cfg"])
        for w in old:
            w.generation = m.generation
        m.boot.reset()
        self.old = None
        m.notify.ready("reload failed; previous generation kept")
