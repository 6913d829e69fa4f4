"""Prometheus exposition: a prometheus-client custom collector that reads Redis at scrape time.

Nothing is pushed and nothing is formatted by hand: ``render`` runs ``generate_latest`` over a
private registry holding one ``TaskQueueCollector``. Families (seconds and bytes, base units):

- ``taskqueue_jobs_total{queue,state}`` counter: every counter the scripts keep (enqueued,
  started, succeeded, failed, retried, dead, cancelled, released, stalled, purged, duplicates);
- ``taskqueue_job_run_seconds{queue}`` and ``taskqueue_job_wait_seconds{queue}`` gauge
  histograms over the last 5 minutes (the scripts keep per-minute histograms, so the
  distribution of a recent window, not an ever-growing one, is what Redis holds);
- ``taskqueue_job_run_quantile_seconds{queue,quantile}`` and ``..._wait_...``: p50/p95/p99;
- ``taskqueue_queue_jobs{queue,state}`` (queued, scheduled, active), ``taskqueue_queue_paused``,
  ``taskqueue_dead_letter_jobs``;
- ``taskqueue_master_workers{master}``, ``taskqueue_master_slots{master}``,
  ``taskqueue_master_busy_slots{master}``, ``taskqueue_master_uptime_seconds{master}``;
- ``taskqueue_worker_memory_bytes{master,worker,kind}`` (rss, uss),
  ``taskqueue_worker_processed_total{master,worker}``,
  ``taskqueue_worker_uptime_seconds{master,worker}``;
- ``taskqueue_alert_active{alert,severity}``; ``taskqueue_sla_value{target}``,
  ``taskqueue_sla_target{target}``, ``taskqueue_sla_violated{target}``;
- ``taskqueue_autoscaler_enabled{master}``, ``taskqueue_autoscaler_pinned_workers{master}``
  (only while pinned), ``taskqueue_autoscaler_metric{master,metric}`` and
  ``taskqueue_autoscaler_threshold{master,metric}`` (current, adapted) and
  ``taskqueue_autoscaler_initial_threshold{master,metric}`` (with
  ``collect_adaptive_threshold_metrics``), ``taskqueue_autoscaler_cooldown_seconds{master,direction}``,
  ``taskqueue_autoscaler_decisions_total{master,outcome}`` (up, down, refused, recycle), all
  from the state each master's autoscaler publishes in its status record; dropped when
  ``collect_scaling_metrics`` is off;
- ``taskqueue_redis_up``: 0 when the scrape could not read Redis (then nothing else).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from ..metrics import COUNTERS, Histogram
from ..metrics.alerts import evaluate
from ..metrics.histogram import representative
from ..metrics.sla import sla_status
from .context import REDIS_DOWN, Context

#: Bucket bounds (s) of the exported histograms.
LE = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
WINDOW = 5
QUANTILES = (0.5, 0.95, 0.99)


def _buckets(h: Histogram) -> tuple[list[tuple[str, float]], float]:
    values = sorted((representative(b) / 1000, n) for b, n in h.buckets.items())
    out, total, i = [], 0, 0
    for le in LE:
        while i < len(values) and values[i][0] <= le:
            total += values[i][1]
            i += 1
        out.append((repr(float(le)), float(total)))
    out.append(("+Inf", float(h.count)))
    return out, sum(v * n for v, n in values)


class TaskQueueCollector:
    """Reads a metrics snapshot at every ``collect`` (one scrape)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("taskqueue_redis_up", "1 if this scrape could read Redis")
        try:
            snap = self.ctx.snapshot()
        except REDIS_DOWN:
            self.ctx.mark_down()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = CounterMetricFamily("taskqueue_jobs", "Jobs counted by the scripts, by queue and "
                                   "event", labels=["queue", "state"])  # fmt: skip
        depth = GaugeMetricFamily("taskqueue_queue_jobs", "Jobs in a queue now, by state",
                                  labels=["queue", "state"])  # fmt: skip
        paused = GaugeMetricFamily("taskqueue_queue_paused", "1 if the queue is paused",
                                   labels=["queue"])  # fmt: skip
        hists = {
            name: GaugeHistogramMetricFamily(
                f"taskqueue_job_{name}_seconds",
                f"Job {name} time over the last {WINDOW} minutes", labels=["queue"])
            for name in ("run", "wait")
        }  # fmt: skip
        quants = {
            name: GaugeMetricFamily(
                f"taskqueue_job_{name}_quantile_seconds",
                f"Job {name} time quantiles over the last {WINDOW} minutes",
                labels=["queue", "quantile"])
            for name in ("run", "wait")
        }  # fmt: skip
        for qname, q in sorted(snap.queues.items()):
            for c in COUNTERS:
                jobs.add_metric([qname, c], float(q.totals.get(c, 0)))
            for state in ("queued", "scheduled", "active"):
                depth.add_metric([qname, state], getattr(q, state))
            paused.add_metric([qname], 1 if q.paused else 0)
            w = q.window(WINDOW)
            for name, h in (("run", w.run_ms), ("wait", w.wait_ms)):
                buckets, total = _buckets(h)
                hists[name].add_metric([qname], buckets, total)
                for qu in QUANTILES:
                    v = h.percentile(qu)
                    if v is not None:
                        quants[name].add_metric([qname, str(qu)], v / 1000)
        yield from (jobs, depth, paused, *hists.values(), *quants.values())
        dead = GaugeMetricFamily("taskqueue_dead_letter_jobs", "Jobs in the dead letter")
        dead.add_metric([], snap.dead)
        yield dead
        yield from self._masters(snap)
        if self.ctx.cfg.metrics.collect_scaling_metrics:
            yield from autoscaler_families(
                snap, self.ctx.cfg.metrics.collect_adaptive_threshold_metrics
            )
        yield from self._alerts_and_sla(snap)

    def _masters(self, snap) -> Iterator[Metric]:
        lab = ["master"]
        fams = {
            "workers": GaugeMetricFamily("taskqueue_master_workers", "Worker processes", labels=lab),
            "slots": GaugeMetricFamily("taskqueue_master_slots", "Job slots of the workers", labels=lab),
            "busy": GaugeMetricFamily("taskqueue_master_busy_slots", "Slots running a job", labels=lab),
            "up": GaugeMetricFamily("taskqueue_master_uptime_seconds", "Master uptime", labels=lab),
        }  # fmt: skip
        mem = GaugeMetricFamily("taskqueue_worker_memory_bytes", "Worker process memory",
                                labels=["master", "worker", "kind"])  # fmt: skip
        done = CounterMetricFamily("taskqueue_worker_processed", "Jobs a worker process finished",
                                   labels=["master", "worker"])  # fmt: skip
        wup = GaugeMetricFamily("taskqueue_worker_uptime_seconds", "Worker process uptime",
                                labels=["master", "worker"])  # fmt: skip
        for m in snap.masters:
            fams["workers"].add_metric([m.id], len(m.workers))
            fams["slots"].add_metric([m.id], m.slots)
            fams["busy"].add_metric([m.id], m.busy)
            fams["up"].add_metric([m.id], m.uptime_s(snap.taken_ms))
            for w in m.workers:
                mem.add_metric([m.id, str(w.index), "rss"], w.rss)
                mem.add_metric([m.id, str(w.index), "uss"], w.uss)
                done.add_metric([m.id, str(w.index)], w.processed)
                if (up := w.uptime_s(snap.taken_ms)) is not None:
                    wup.add_metric([m.id, str(w.index)], up)
        yield from (*fams.values(), mem, done, wup)

    def _alerts_and_sla(self, snap) -> Iterator[Metric]:
        active = GaugeMetricFamily("taskqueue_alert_active", "1 for each active alert",
                                   labels=["alert", "severity"])  # fmt: skip
        for a in evaluate(snap, self.ctx.thresholds, self.ctx.priority):
            active.add_metric([a.key, a.severity], 1)
        yield active
        if not self.ctx.cfg.metrics.collect_sla_metrics:
            return
        lab = ["target"]
        value = GaugeMetricFamily("taskqueue_sla_value", "Current value of an SLA target's metric",
                                  labels=lab)  # fmt: skip
        target = GaugeMetricFamily("taskqueue_sla_target", "SLA target", labels=lab)
        violated = GaugeMetricFamily("taskqueue_sla_violated", "1 if the target is violated",
                                     labels=lab)  # fmt: skip
        for row in sla_status(snap, self.ctx.targets)["targets"]:
            target.add_metric([row["name"]], row["target"])
            violated.add_metric([row["name"]], 1 if row["status"] == "violated" else 0)
            if row["value"] is not None:
                value.add_metric([row["name"]], row["value"])
        yield from (value, target, violated)


def autoscaler_families(snap, initial: bool) -> Iterator[Metric]:  # noqa: ANN001
    """The autoscaler gauges, from each master's published autoscaler state."""
    g = GaugeMetricFamily
    on = g("taskqueue_autoscaler_enabled", "1 if the master's autoscaler is on", labels=["master"])
    pinned = g(
        "taskqueue_autoscaler_pinned_workers", "Worker count pinned by hand", labels=["master"]
    )
    metric = g(
        "taskqueue_autoscaler_metric",
        "A trigger metric as last sampled",
        labels=["master", "metric"],
    )
    thr = g(
        "taskqueue_autoscaler_threshold",
        "A trigger threshold (adapted)",
        labels=["master", "metric"],
    )
    start = g("taskqueue_autoscaler_initial_threshold", "A trigger threshold as configured",
              labels=["master", "metric"])  # fmt: skip
    cool = g(
        "taskqueue_autoscaler_cooldown_seconds", "Cooldown left", labels=["master", "direction"]
    )
    steps = CounterMetricFamily("taskqueue_autoscaler_decisions", "Autoscaler decisions by outcome",
                                labels=["master", "outcome"])  # fmt: skip
    for m in snap.masters:
        a = m.autoscaler or {}
        on.add_metric([m.id], 1 if a.get("enabled") else 0)
        if not a.get("enabled"):
            continue
        if a.get("pinned") is not None:
            pinned.add_metric([m.id], a["pinned"])
        for fam, values in ((metric, a.get("metrics")), (thr, a.get("thresholds")),
                            (start, a.get("initial_thresholds") if initial else None)):  # fmt: skip
            for k, v in (values or {}).items():
                fam.add_metric([m.id, k], v)
        for k, v in (a.get("cooldown_left") or {}).items():
            cool.add_metric([m.id, k], v)
        for k, v in (a.get("decisions") or {}).items():
            steps.add_metric([m.id, k], v)
    yield from (on, pinned, metric, thr, *((start,) if initial else ()), cool, steps)


def render(ctx: Context) -> tuple[bytes, str]:
    """(body, content type) of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskQueueCollector(ctx))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
