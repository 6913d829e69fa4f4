"""The HTTP API through a real server: ``task-worker web`` (uvicorn) on a free loopback port,
httpx as the client, a real redis-server, jobs run by a real Worker."""

from __future__ import annotations

import json
import time

import pytest
from known_jobs import run_known_jobs
from prometheus_client.parser import text_string_to_metric_families
from web_fixtures import ROOT

from taskqueue import TaskQueue
from taskqueue.registered import entry
from taskqueue.web import ROUTES

P = "/tasks"
TOKEN = "tok-7f3a9c1e5b"


def gets(app_prefix: str = P) -> list[str]:
    return [app_prefix + e.path for e in ROUTES if e.method == "GET" and "{" not in e.path]


def test_every_endpoint_answers_with_the_numbers_of_the_jobs_run(web, client, reg) -> None:
    jobs = run_known_jobs(client, reg)
    srv = web(client.url)
    for path in gets():
        r = srv.get(path)
        assert r.status_code == 200, (path, r.text)
    stats = srv.get(f"{P}/stats").json()
    d = stats["queues"]["default"]
    assert (d["enqueued"], d["started"], d["succeeded"]) == (16, 18, 13)
    assert (d["failed"], d["retried"], d["dead"]) == (5, 3, 2)
    assert stats["dead"] == 2 and stats["overall"]["succeeded"] == 13

    q = srv.get(f"{P}/metrics/queues").json()["default"]
    assert (q["queued"], q["scheduled"], q["active"]) == (0, 1, 0)
    w1 = q["windows"]["1"]
    assert w1["counts"]["succeeded"] == 13 and w1["error_rate"] == pytest.approx(5 / 18, abs=1e-4)
    assert w1["run_ms"]["count"] == 18 and w1["wait_ms"]["count"] == 18
    # the slowest two runs slept 100 ms: p95 is within the bucket error (plus sleep overshoot)
    assert 100 * 0.9375 <= w1["run_ms"]["p95"] <= 2000  # generous: a loaded CI machine

    job = srv.get(f"{P}/jobs/{jobs['dead'][0]}").json()
    assert job["state"] == "dead" and job["error"] == "ValueError: boom"
    assert srv.get(f"{P}/jobs/nosuch").status_code == 404
    dead = srv.get(f"{P}/dead").json()
    assert dead["total"] == 2 and {j["id"] for j in dead["jobs"]} == set(jobs["dead"])
    sched = srv.get(f"{P}/queues/default/jobs", params={"state": "scheduled"}).json()
    assert [j["id"] for j in sched["jobs"]] == [jobs["delayed"]]
    assert srv.get(f"{P}/queues/default/jobs", params={"limit": "x"}).status_code == 400

    summary = srv.get(f"{P}/metrics/summary").json()
    assert summary["jobs"]["dead"] == 2 and summary["scheduled"] == 1
    alerts = srv.get(f"{P}/alerts").json()["alerts"]
    growing = [a for a in alerts if a["name"] == "dead_letter_growing"]
    assert growing and growing[0]["value"] == 2 and growing[0]["since_ms"] > 0
    sla = srv.get(f"{P}/sla").json()
    rate = next(t for t in sla["targets"] if t["name"] == "success_rate")
    assert rate["value"] == pytest.approx(13 / 18, abs=1e-4) and rate["status"] == "violated"
    assert rate["percent_of_target"] == pytest.approx(100 * (13 / 18) / 0.95, abs=0.1)
    health = srv.get(f"{P}/health").json()
    assert health["status"] == "healthy" and health["sla_metrics"]["status"] == "violated"
    everything = srv.get(f"{P}/metrics").json()
    assert {"sla", "alerts", "autoscaler", "queues", "masters", "tasks"} <= set(everything)
    doc = srv.get(f"{P}/openapi.json").json()
    assert {f"{P}{e.path}" for e in ROUTES} == set(doc["paths"])


def test_prometheus_output_parses_and_its_counters_equal_the_jobs_run(web, client, reg) -> None:
    run_known_jobs(client, reg)
    srv = web(client.url)
    for path in ("/metrics", f"{P}/metrics/prometheus"):
        r = srv.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        fams = {f.name: f for f in text_string_to_metric_families(r.text)}
        jobs = {(s.labels["queue"], s.labels["state"]): s.value
                for s in fams["taskqueue_jobs"].samples if s.name == "taskqueue_jobs_total"}  # fmt: skip
        assert jobs[("default", "succeeded")] == 13 and jobs[("default", "dead")] == 2
        assert jobs[("default", "enqueued")] == 16 and jobs[("default", "failed")] == 5
        depth = {(s.labels["queue"], s.labels["state"]): s.value
                 for s in fams["taskqueue_queue_jobs"].samples}  # fmt: skip
        assert depth[("default", "scheduled")] == 1
        run = [s for s in fams["taskqueue_job_run_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]  # fmt: skip
        assert run[0].value == 18
        assert fams["taskqueue_redis_up"].samples[0].value == 1
        assert fams["taskqueue_dead_letter_jobs"].samples[0].value == 2


def test_writes_need_the_token_and_a_refused_write_changes_nothing(web, client, reg) -> None:
    jobs = run_known_jobs(client, reg)
    victim = jobs["dead"][0]
    writes = [("POST", f"{P}/dead/{victim}/retry"), ("DELETE", f"{P}/dead/{victim}"),
              ("POST", f"{P}/queues/default/pause"), ("POST", f"{P}/queues/default/purge"),
              ("POST", f"{P}/masters/nohost:1/scale")]  # fmt: skip

    def unchanged() -> None:
        assert client.redis.zscore(client.keys.dead, victim) is not None
        assert not client.redis.sismember(client.keys.paused, "default")
        assert client.queue_lengths()["default"]["scheduled"] == 1

    no_token = web(client.url)
    for method, path in writes:
        r = no_token.http.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403 and "no [web] token" in r.json()["error"], path
    unchanged()
    srv = web(client.url, env={"TASKQUEUE_WEB__TOKEN": TOKEN})
    for method, path in writes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = srv.http.request(method, path, headers=headers, json={"workers": 2})
            assert r.status_code == 401, (method, path, headers, r.text)
            assert TOKEN not in r.text
    unchanged()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert srv.http.post(f"{P}/queues/default/pause", headers=auth).json()["paused"] is True
    assert client.redis.sismember(client.keys.paused, "default")
    assert srv.http.post(f"{P}/queues/default/resume", headers=auth).status_code == 200
    assert srv.http.post(f"{P}/dead/{victim}/retry", headers=auth).json()["retried"] == 1
    assert srv.http.post(f"{P}/dead/{victim}/retry", headers=auth).status_code == 404
    assert srv.http.delete(f"{P}/dead/{jobs['dead'][1]}", headers=auth).json()["deleted"] == 1
    assert srv.http.post(f"{P}/queues/default/purge", headers=auth).json()["purged"] >= 1
    assert srv.http.post(f"{P}/queues/bad name!/pause", headers=auth).status_code in (400, 404)
    r = srv.http.post(f"{P}/masters/nohost:1/scale", headers=auth, json={"workers": 2})
    assert r.status_code == 404
    assert srv.http.post(f"{P}/masters/x/scale", headers=auth, json={}).status_code == 400
    assert TOKEN not in srv.log()


def test_redis_down_gives_503_with_the_reason_and_no_500_anywhere(web, redis_factory) -> None:
    server = redis_factory()
    srv = web(server.url)
    assert srv.get(f"{P}/health").status_code == 200
    server.kill()
    r = srv.get(f"{P}/health")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unhealthy" and "redis unreachable" in body["reason"]
    for path in gets():
        r = srv.get(path)
        assert r.status_code in (200, 503), (path, r.status_code, r.text)
        if r.status_code == 503 and path != f"{P}/health":
            assert "redis unreachable" in r.json()["error"]
    alerts = srv.get(f"{P}/alerts").json()["alerts"]
    assert alerts[0]["name"] == "redis_unreachable" and alerts[0]["severity"] == "critical"
    prom = srv.get("/metrics")
    assert prom.status_code == 200 and "taskqueue_redis_up 0.0" in prom.text
    server.restart()
    assert srv.get(f"{P}/health").status_code == 200


def test_the_web_only_file_of_the_product_description_serves_health(web, redis_url) -> None:
    srv = web(redis_url, "-c", str(ROOT / "conf" / "task-queue-web.toml"), wait=f"{P}/health")
    r = srv.get(f"{P}/health")
    assert r.status_code == 200 and r.json()["components"]["redis"]["status"] == "ok"
    assert srv.get(f"{P}/status").json()["masters"] == []


def test_settings_turn_routes_off(web, redis_url) -> None:
    srv = web(redis_url, env={"TASKQUEUE_WEB__ENABLE_METRICS": "false",
                              "TASKQUEUE_WEB__ENABLE_HEALTH_CHECK": "false",
                              "TASKQUEUE_WEB__ROUTE_PREFIX": "/ops"}, wait="/ops/uptime")  # fmt: skip
    assert srv.get("/ops/health").status_code == 404
    assert srv.get("/ops/metrics").status_code == 404 and srv.get("/metrics").status_code == 404
    assert srv.get("/ops/uptime").status_code == 200
    srv2 = web(redis_url, env={"TASKQUEUE_METRICS__COLLECT_SLA_METRICS": "false",
                               "TASKQUEUE_METRICS__COLLECT_SCALING_METRICS": "false"})  # fmt: skip
    assert srv2.get(f"{P}/sla").status_code == 404
    assert srv2.get(f"{P}/metrics/autoscaler").status_code == 404
    assert "autoscaler" not in srv2.get(f"{P}/metrics").json()
    assert srv2.get(f"{P}/health").json()["sla_metrics"] is None
    quiet = web(redis_url, env={"TASKQUEUE_METRICS__ENABLED": "false"})
    for path in ("/metrics", f"{P}/metrics", f"{P}/metrics/prometheus", f"{P}/stats", f"{P}/sla"):
        assert quiet.get(path).status_code == 404, path
    assert quiet.get(f"{P}/health").status_code == 200
    off = web(redis_url, env={"TASKQUEUE_WEB__AUTO_CONFIGURE_ROUTES": "false"}, wait=None)
    assert off.proc.wait(30) == 2 and "auto_configure_routes = false" in off.log()


def test_nothing_prints_the_redis_password_or_the_token(web, redis_factory, client, reg) -> None:
    server = redis_factory()
    server.client().config_set("requirepass", "s3cretpw")
    url = f"redis://:s3cretpw@127.0.0.1:{server.port}/0"
    tq = TaskQueue(url, registry=reg)
    run_known_jobs(tq, reg)
    srv = web(url, "--log-level", "DEBUG", env={"TASKQUEUE_WEB__TOKEN": TOKEN})
    bodies = [srv.get(p).text for p in [*gets(), "/metrics"]]
    server.kill()
    bodies += [srv.get(p).text for p in [*gets(), "/metrics"]]
    for text in [*bodies, srv.log()]:
        assert "s3cretpw" not in text and TOKEN not in text
    tq.close()


def test_adaptive_thresholds_are_served_only_when_asked(web, client) -> None:
    """A master's autoscaler state, as its status record carries it."""
    state = {"enabled": True, "thresholds": {"queue_pressure": 0.8},
             "initial_thresholds": {"queue_pressure": 0.75}, "adjustments": [{"at": 1}]}  # fmt: skip
    record = {"id": "h:1", "queues": ["default"], "workers": [], "autoscaler": state}
    client.redis.set(client.keys.master("h:1"), json.dumps(record), px=60_000)
    client.redis.zadd(client.keys.masters, {"h:1": int(time.time() * 1000)})
    plain = web(client.url).get(f"{P}/metrics/autoscaler").json()["masters"]["h:1"]["state"]
    assert plain["thresholds"] == {"queue_pressure": 0.8}
    assert "adjustments" not in plain and "initial_thresholds" not in plain
    srv = web(client.url, env={"TASKQUEUE_METRICS__COLLECT_ADAPTIVE_THRESHOLD_METRICS": "true"})
    full = srv.get(f"{P}/metrics/autoscaler").json()["masters"]["h:1"]["state"]
    assert full["adjustments"] == [{"at": 1}] and full["initial_thresholds"]


def test_registered_lists_the_live_masters_and_standalone_workers(web, client) -> None:
    """/registered and /registry/info read the registered-tasks hash, the list workers consult
    for unknown tasks: masters and standalone workers alike; an expired entry is ignored."""
    publish = {
        "h:1": entry(["default"], [{"name": "a", "queue": "default", "max_retries": 3}]),
        "worker-x": entry(["default", "low"], [{"name": "a", "queue": "default", "max_retries": 5},
                                               {"name": "b", "queue": "low", "max_retries": 0}]),
        "gone": entry(["default"], [{"name": "c", "queue": "default"}], now=time.time() - 60),
    }  # fmt: skip
    client.redis.hset(client.keys.registered, mapping=publish)
    srv = web(client.url)
    tasks = {t["name"]: t for t in srv.get(f"{P}/registered").json()["tasks"]}
    assert sorted(tasks) == ["a", "b"]
    assert tasks["a"]["publishers"] == ["h:1", "worker-x"] and not tasks["a"]["consistent"]
    assert tasks["b"] == {"name": "b", "queue": "low", "max_retries": 0,
                          "publishers": ["worker-x"], "consistent": True}  # fmt: skip
    info = srv.get(f"{P}/registry/info").json()
    assert info["tasks_total"] == 2 and set(info["publishers"]) == {"h:1", "worker-x"}
    assert info["inconsistent"] == ["a"] and info["unconsumed"] == []


def test_alert_settings_reach_the_rules(web, client) -> None:
    """[alerts] from the environment: a master with 1 of 10 slots busy and 30 jobs waiting."""
    record = {"id": "h:1", "queues": ["default"], "workers": [{"busy": 1, "slots": 10}]}
    client.redis.set(client.keys.master("h:1"), json.dumps(record), px=60_000)
    client.redis.zadd(client.keys.masters, {"h:1": int(time.time() * 1000)})
    for i in range(30):
        client.enqueue_with("ok", (i,), strict=False)

    def names(srv) -> set[str]:
        return {a["name"] for a in srv.get(f"{P}/alerts").json()["alerts"]}

    assert names(web(client.url)) == {"queue_pressure"}  # 30 x 1.0 per worker > 2.0
    env = {"TASKQUEUE_ALERTS__MAX_QUEUE_PRESSURE_SCORE": "100",
           "TASKQUEUE_ALERTS__MIN_WORKER_UTILIZATION": "0.2",
           "TASKQUEUE_ALERTS__MAX_WORKER_UTILIZATION": "0.3"}  # fmt: skip
    assert names(web(client.url, env=env)) == {"worker_utilization_low"}
    env.update({"TASKQUEUE_ALERTS__MIN_WORKER_UTILIZATION": "0",
                "TASKQUEUE_ALERTS__MAX_WORKER_UTILIZATION": "0.05"})  # fmt: skip
    assert names(web(client.url, env=env)) == {"worker_utilization_high"}


@pytest.mark.slow
def test_the_api_answers_on_redis_cluster(web, cluster_url, reg) -> None:
    tq = TaskQueue(cluster_url, registry=reg)
    run_known_jobs(tq, reg)
    srv = web(cluster_url)
    for path in gets():
        r = srv.get(path)
        assert r.status_code == 200, (path, r.text)
    assert srv.get(f"{P}/stats").json()["queues"]["default"]["succeeded"] == 13
    tq.close()


@pytest.mark.slow
def test_a_scale_request_reaches_a_live_master(web, masters, redis_url) -> None:
    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    srv = web(redis_url, env={"TASKQUEUE_WEB__TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = srv.http.post(f"{P}/masters/{m.id}/scale", headers=auth, json={"workers": 3})
    assert r.status_code == 200 and r.json()["ok"] and r.json()["master"] == m.id, r.text
    m.wait_workers(3, timeout=60)
    r = srv.http.post(f"{P}/masters/{m.id}/scale", headers=auth, json={"delta": -1})
    assert r.status_code == 200 and r.json()["ok"], r.text
    m.wait_workers(2, timeout=60)
    fams = {f.name: f for f in text_string_to_metric_families(srv.get("/metrics").text)}
    ups = [s for s in fams["taskqueue_worker_uptime_seconds"].samples if s.labels["master"] == m.id]
    assert len(ups) == 2 and all(0 <= s.value < 3600 for s in ups)
    r = srv.http.post(f"{P}/masters/{m.id}/scale", headers=auth, json={"workers": 0})
    assert r.status_code == 409 and "between 1 and 1024" in r.json()["message"], r.text
    m.wait_workers(2, timeout=60)
