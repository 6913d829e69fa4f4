"""The README's examples run as written (against the test server instead of localhost:6379)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from taskqueue.registry import registry
from taskqueue.worker import Worker

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_python_examples_run(redis_url: str, monkeypatch) -> None:
    blocks = python_blocks()
    assert blocks, "README has no python example"
    worker = Worker(redis_url, max_concurrent_tasks=10)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        for code in blocks:
            code = code.replace("redis://127.0.0.1:6379", redis_url)
            exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    finally:
        worker.stop()
        thread.join(timeout=30)
        for name in ("add", "send_email"):
            registry.remove(name)
