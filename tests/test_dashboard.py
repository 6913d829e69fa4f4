"""The dashboard end to end, in real headless Chromium (Debian's, driven by Playwright): a real
``task-worker web`` server, a real master whose worker processes run real jobs on a real Redis.

``TASKQUEUE_SCREENSHOT=path`` also copies the final laptop screenshot there (``make screenshot``
writes docs/dashboard.png this way); otherwise screenshots go only to the test's tmp folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tasks_for_dashboard import gated, work

from taskqueue import TaskQueue
from taskqueue.testing import free_port

TOKEN = "s3cret-dashboard-token"
TASKS = "tests.tasks_for_dashboard"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 60_000
HIDE = """() => { Object.defineProperty(document, "hidden", {value: true, configurable: true});
                 document.dispatchEvent(new Event("visibilitychange")); }"""
SHOW = """() => { Object.defineProperty(document, "hidden", {value: false, configurable: true});
                 document.dispatchEvent(new Event("visibilitychange")); }"""


def _int(page, selector: str, attr: str) -> int:
    return int(page.get_attribute(selector, attr) or 0)


def _grows(page, selector: str, attr: str, above: int) -> None:
    page.wait_for_function(
        "([sel, attr, above]) => +(document.querySelector(sel)?.getAttribute(attr) || 0) > above",
        arg=[selector, attr, above],
        timeout=WAIT_MS,
    )


def _give_token_if_asked(page) -> None:
    dialog = page.locator("#token-dialog")
    dialog.wait_for(state="visible", timeout=WAIT_MS)
    page.fill("#token-input", TOKEN)
    page.click("#token-ok")


@pytest.mark.slow
def test_dashboard_end_to_end(browser, redis_url, masters, web, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    master = masters(redis_url, "-w", "2", "-q", "default,low_priority", "-a",
                     "--autoscaler-min-workers", "2", "--autoscaler-max-workers", "4",
                     imports=TASKS)  # fmt: skip
    master.wait_workers(2, timeout=60)
    server = web(
        redis_url, env={"TASKQUEUE_WEB__TOKEN": TOKEN, "TASKQUEUE_AUTOSCALER__ENABLED": "true"}
    )
    tq = TaskQueue(redis_url)
    errors: list[str] = []
    context = browser.new_context(viewport=LAPTOP, color_scheme="light")
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.base + "/")
        page.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
        assert page.inner_text("#live") == "live"

        # Jobs run: the processed count and the throughput chart grow.
        before = _int(page, "#jobs-processed", "data-value")
        chart_before = _int(page, "#throughput-chart", "data-total")
        tq.enqueue_many([(work, (0.01, i)) for i in range(30)])
        _grows(page, "#jobs-processed", "data-value", before + 29)
        _grows(page, "#throughput-chart", "data-total", chart_before + 29)
        assert page.locator("#throughput-chart rect.ok").count() >= 1
        assert page.locator(f'[data-master="{master.id}"]').count() == 1

        # A dead job shows its error; a click on Retry (token asked once) runs it again.
        dead_id = tq.enqueue_with(gated, (str(gate),), max_retries=0)
        row = page.locator(f'[data-dead-id="{dead_id}"]')
        row.wait_for(timeout=WAIT_MS)
        assert "gate gate is closed" in row.inner_text()
        gate.unlink()
        row.locator('button[data-action="retry"]').click()
        _give_token_if_asked(page)
        row.wait_for(state="detached", timeout=WAIT_MS)
        assert tq.result(dead_id, timeout=60) == "passed"
        assert tq.status(dead_id).state == "succeeded"

        # Pause by a click: a new job waits; resume by a click: it runs.
        queue_row = page.locator('#queues tr[data-queue="default"]')
        queue_row.locator('button[data-action="pause"]').click()
        queue_row.locator(".tag.paused").wait_for(timeout=WAIT_MS)
        assert tq.redis.sismember(tq.keys.paused, "default")
        held = tq.enqueue_with(work, (0.0, 7))
        page.locator(f'#jobs tr[data-job="{held}"]').wait_for(timeout=WAIT_MS)
        assert tq.status(held).state == "queued"
        queue_row.locator('button[data-action="resume"]').click()
        queue_row.locator('button[data-action="pause"]').wait_for(timeout=WAIT_MS)
        assert tq.result(held, timeout=60) == 7
        assert not tq.redis.sismember(tq.keys.paused, "default")

        # A hidden tab stops polling; visible again, it refreshes at once.
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if "/metrics" in r.url else None)
        page.evaluate(HIDE)
        assert page.inner_text("#live") == "paused (tab hidden)"
        polls.clear()
        page.wait_for_timeout(5_000)
        assert polls == [], "a hidden tab kept polling"
        page.evaluate(SHOW)
        page.wait_for_function("() => document.querySelector('#live').textContent === 'live'")
        assert polls, "a visible tab did not refresh"

        # Job lookup by id.
        page.fill("#lookup-id", held)
        page.click("#lookup button")
        page.locator(f'#lookup-result [data-job="{held}"]').wait_for(timeout=WAIT_MS)
        assert "succeeded" in page.inner_text("#lookup-result")

        # A busy moment for the screenshot: a dead job, waiting and running jobs.
        gate.touch()
        tq.enqueue_with(gated, (str(gate),), max_retries=0)
        tq.enqueue_many([(work, (0.5, i)) for i in range(80)])
        for i in range(15):
            tq.enqueue_with(work, (0.0, i), queue="low_priority", delay=3600)
        page.locator("#dead [data-dead-id]").first.wait_for(timeout=WAIT_MS)
        page.wait_for_function(
            "() => document.querySelectorAll('#queue-chart rect').length > 0", timeout=WAIT_MS
        )
        page.evaluate("window.scrollTo(0, 0); document.getElementById('toasts')?.remove()")
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("TASKQUEUE_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["TASKQUEUE_SCREENSHOT"])

        # The phone layout in dark mode: one column, nothing wider than the screen.
        phone = browser.new_context(viewport=PHONE, color_scheme="dark", is_mobile=True)
        small = phone.new_page()
        small.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        small.goto(server.base + "/tasks/")
        small.wait_for_selector("body[data-loaded]", timeout=WAIT_MS)
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the phone page scrolls sideways ({width}px)"
        bg = small.evaluate("getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(15, 18, 24)", f"dark theme not applied: {bg}"
        small.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
        phone.close()

        # Delete takes two clicks; "Retry all" empties the dead letter and the jobs run.
        doomed = tq.enqueue_with(gated, (str(gate),), max_retries=0)
        row = page.locator(f'[data-dead-id="{doomed}"]')
        row.wait_for(timeout=WAIT_MS)
        row.locator('button[data-action="delete"]').click()
        assert tq.status(doomed).state == "dead", "one click does not delete"
        row.locator('button[data-action="delete"]', has_text="Confirm delete").click()
        row.wait_for(state="detached", timeout=WAIT_MS)
        assert tq.redis.zscore(tq.keys.dead, doomed) is None
        left = [i.decode() for i in tq.redis.zrange(tq.keys.dead, 0, -1)]
        assert len(left) == 1
        gate.unlink()
        page.click("#retry-all")
        page.locator("#dead [data-dead-id]").first.wait_for(state="detached", timeout=WAIT_MS)
        assert tq.result(left[0], timeout=60) == "passed"
    finally:
        context.close()
        tq.close()
    assert errors == [], f"console errors: {errors}"


@pytest.mark.slow
def test_dashboard_says_when_redis_or_the_api_is_down(browser, web) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    server = web(dead_redis)
    page = browser.new_page(viewport=LAPTOP)
    try:
        page.goto(server.base + "/")
        outage = page.locator("#outage")
        outage.wait_for(state="visible", timeout=WAIT_MS)
        assert outage.inner_text().startswith("Redis is unreachable")
        assert page.inner_text("#live") == "down"
        assert page.inner_text("h1") == "taskqueue", "the page itself still renders"
        server.close()
        page.wait_for_function(
            "() => document.querySelector('#outage').textContent.startsWith('The API is unreachable')",
            timeout=WAIT_MS,
        )
        off = web(dead_redis, env={"TASKQUEUE_WEB__ENABLE_METRICS": "false"})
        page.goto(off.base + "/")
        page.wait_for_function(
            "() => document.querySelector('#outage').textContent.includes('[web] enable_metrics')",
            timeout=WAIT_MS,
        )
    finally:
        page.close()
