"""Headless Chromium for the dashboard's browser test and ``make screenshot``.

Debian's ``chromium`` package driven by Playwright through ``executable_path``: Playwright's own
browser download is not used (``playwright install`` is never needed). Install the ``browser``
extra and ``apt-get install chromium``; ``TASKQUEUE_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Flags for a root user in a container with no network but loopback: no sandbox (root), no GPU,
#: and none of Chromium's background connections (they are refused here, many at a time).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

INSTALL_HINT = "apt-get install chromium (Debian), then pip install -e '.[browser]'"


def find_chromium() -> str | None:
    """The Chromium binary: ``$TASKQUEUE_CHROMIUM``, else ``chromium`` on PATH, else None."""
    named = os.environ.get("TASKQUEUE_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def unavailable() -> str | None:
    """Why no browser can run here (a sentence with the fix), or None when one can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright for Python is not installed: {INSTALL_HINT}"
    if find_chromium() is None:
        return f"no Chromium binary on PATH (nor $TASKQUEUE_CHROMIUM): {INSTALL_HINT}"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system Chromium, closed on exit."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=find_chromium(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
