"""The browser tooling itself: Debian's Chromium, driven by Playwright, renders a page served
over real HTTP on loopback, runs its script, takes a click and a screenshot."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = """<!doctype html><meta charset="utf-8"><title>t</title><link rel="icon" href="data:,">
<button id="b">click</button><output id="n">0</output>
<script>document.getElementById('b').onclick = () => {
  const n = document.getElementById('n'); n.textContent = String(+n.textContent + 1); };</script>
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(PAGE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_chromium_renders_clicks_and_screenshots(browser, served: str, tmp_path: Path) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(served)
    page.click("#b")
    page.click("#b")
    assert page.inner_text("#n") == "2"
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert errors == []
    page.close()
