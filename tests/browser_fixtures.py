"""The ``browser`` fixture: one headless Chromium (Debian's, through Playwright) per test module.

Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
thread while it is started, so ``asyncio.run`` (the Worker) would fail in any test that ran
while it is.

It skips with the reason and the fix where no Chromium or Playwright is installed, except when
``TASKQUEUE_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once it has installed Chromium): then a
missing browser fails the test instead of hiding it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from taskqueue.testing import browser as tq_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = tq_browser.unavailable()
    if reason:
        if os.environ.get("TASKQUEUE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TASKQUEUE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with tq_browser.chromium() as b:
        yield b
