"""The dashboard's formatting module (taskqueue/web/static/format.js), run in real Chromium: the
page loads it from a real HTTP server on loopback and the test calls its functions."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskqueue

STATIC = Path(taskqueue.__file__).parent / "web" / "static"


@pytest.fixture(scope="module")
def fmt_page(browser) -> Iterator:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))  # a bare .js URL
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/format.js")
    page.evaluate("async () => { window.fmt = await import('./format.js'); }")
    yield page
    page.close()
    server.shutdown()
    server.server_close()
    assert errors == []


def call(page, fn: str, *args):
    return page.evaluate(f"(args) => window.fmt.{fn}(...args)", list(args))


@pytest.mark.parametrize(
    "fn,args,expected",
    [
        ("count", [1234567], "1,234,567"),
        ("count", [None], "—"),
        ("rate", [0], "0"),
        ("rate", [0.254], "0.25"),
        ("rate", [12.345], "12.3"),
        ("duration", [850], "850 ms"),
        ("duration", [1500], "1.50 s"),
        ("duration", [125_000], "2 min 5 s"),
        ("duration", [3 * 3_600_000 + 600_000], "3 h 10 min"),
        ("duration", [None], "—"),
        ("bytes", [52_428_800], "50.0 MiB"),
        ("bytes", [3 * 1024**3], "3.00 GiB"),
        ("percent", [0.9531], "95.3 %"),
        ("ago", [1_000, 13_000], "12.0 s ago"),
        ("ago", [200_000, 20_000], "in 3 min 0 s"),
        ("niceMax", [0], 1),
        ("niceMax", [7], 10),
        ("niceMax", [130], 200),
        ("niceMax", [420], 500),
        ("processed", [{"succeeded": 5, "failed": 2, "dead": 1}], 7),
        ("processed", [None], None),
    ],
)
def test_formatting(fmt_page, fn: str, args: list, expected) -> None:
    assert call(fmt_page, fn, *args) == expected


def test_stacked_bars_and_pages(fmt_page) -> None:
    out = call(fmt_page, "stackedBars", {"ok": [1, 0, 3], "bad": [1, 0, 0]}, 128, 100, 28)
    assert out["max"] == 5
    first, empty, last = out["bars"]
    assert [s["name"] for s in first["segs"]] == ["ok", "bad"] and empty["segs"] == []
    assert first["segs"][0]["h"] == pytest.approx(20) and last["segs"][0]["y"] == pytest.approx(40)
    assert first["x"] == pytest.approx(28 + 100 / 3 * 0.1)
    assert call(fmt_page, "linePoints", [0, 5, 10], 100, 50) == "0.0,50.0 50.0,25.0 100.0,0.0"
    page = call(fmt_page, "page", 20, 10, 25)
    assert json.dumps(page, sort_keys=True) == json.dumps(
        {"from": 21, "next": None, "prev": 10, "to": 25, "total": 25}, sort_keys=True
    )
    assert call(fmt_page, "page", 0, 10, 0)["from"] == 0
