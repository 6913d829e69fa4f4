"""The README's examples run as written (against the test server instead of localhost:6379).

All ```python blocks run in order in one namespace, as a reader pasting them would; every
`print(...)  # expected` line must print what its comment says, and every `test_*` function a
block defines is called with the fixtures it names, so the README's test example is run too.
"""

from __future__ import annotations

import inspect
import re
import threading
from pathlib import Path

from taskqueue import TaskQueue, set_default
from taskqueue.registry import registry
from taskqueue.schedules import schedules
from taskqueue.worker import Worker

README = Path(__file__).resolve().parent.parent / "README.md"
PRINT_EXPECT = re.compile(r"^\s*print\(.*\)\s*#\s*(?P<expected>[^(]+?)(?:\s*\(.*\))?\s*$")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def expected_prints(code: str) -> list[str]:
    return [m["expected"].strip() for line in code.splitlines() if (m := PRINT_EXPECT.match(line))]


def test_readme_python_examples_run(redis_url: str, capsys) -> None:
    blocks = python_blocks()
    assert blocks, "README has no python example"
    worker = Worker(redis_url, max_concurrent_tasks=10)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    namespace: dict = {"__name__": "readme_example"}
    called: list[str] = []
    try:
        for code in blocks:
            code = code.replace("redis://127.0.0.1:6379", redis_url)
            capsys.readouterr()
            exec(compile(code, str(README), "exec"), namespace)
            printed = capsys.readouterr().out.split()
            for expected in expected_prints(code):
                assert expected in printed, f"README promises {expected!r}, printed {printed}"
            for name, fn in list(namespace.items()):
                if name.startswith("test_") and callable(fn) and name not in called:
                    fixtures = {"tq": TaskQueue(redis_url), "redis_url": redis_url}
                    params = inspect.signature(fn).parameters
                    fn(**{p: fixtures[p] for p in params})
                    called.append(name)
    finally:
        worker.stop()
        thread.join(timeout=30)
        set_default(None)
        for name in ("add", "send_email", "reports.nightly", "inventory.sync"):
            registry.remove(name)
            schedules.remove(name)
    assert called, "the README's test example (a test_* function) was not found and not run"
