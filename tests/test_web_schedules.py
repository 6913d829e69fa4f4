"""``/tasks/schedules`` through a real HTTP server: the listing tqctl shows, and pause / resume /
run-now behind the bearer token."""

from __future__ import annotations

import time

from test_schedules import keeper, records

from taskqueue.keys import Keys

P = "/tasks"
TOKEN = "tok-sched-41c2"
KEYS = Keys()


def test_schedules_listing_and_actions(web, client) -> None:
    k = keeper(client.url, records(("nightly", {"cron": "30 2 * * *", "tz": "Europe/Paris"})))
    k.tick(time.monotonic())  # a scheduler stores the schedule in Redis
    srv = web(client.url, env={"TASKQUEUE_WEB__TOKEN": TOKEN})
    [row] = srv.get(f"{P}/schedules").json()["schedules"]
    assert (row["name"], row["task"], row["paused"]) == ("nightly", "t.tick", False)
    assert row["when"] == "cron '30 2 * * *' Europe/Paris" and row["next_at"].endswith("+00:00")
    assert row["next_at"][11:16] in ("00:30", "01:30")  # 02:30 in Paris, summer or winter
    assert srv.http.post(f"{P}/schedules/nightly/pause").status_code == 401
    assert client.redis.hget(KEYS.schedule("nightly"), "paused") == b"0"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = srv.http.post(f"{P}/schedules/nightly/pause", headers=auth)
    assert r.json() == {"name": "nightly", "paused": True, "changed": True}
    assert srv.get(f"{P}/schedules").json()["schedules"][0]["next_at"] is None
    job = srv.http.post(f"{P}/schedules/nightly/run-now", headers=auth).json()["job"]
    assert client.status(job).state == "queued"
    assert srv.get(f"{P}/schedules").json()["schedules"][0]["last_outcome"] == "queued"
    assert srv.http.post(f"{P}/schedules/nightly/resume", headers=auth).json()["changed"] is True
    assert srv.http.post(f"{P}/schedules/nope/pause", headers=auth).status_code == 404
    assert TOKEN not in srv.log()
