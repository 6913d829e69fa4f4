"""Terminal output for the CLIs: aligned tables, byte sizes, durations and a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Render rows as an aligned table; ``columns`` is (key, heading) pairs."""
    cells = [[h for _, h in columns]] + [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def mib(n: int | None) -> str:
    return "-" if not n else f"{n / 1048576:.1f}M"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


class Progress:
    """A one-line progress bar on a TTY; plain periodic lines otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr) -> None:
        self.label, self.total, self.stream = label, max(total, 1), stream
        self.tty = stream.isatty()
        self.last = ""

    def update(self, done: int, note: str = "") -> None:
        width = 30
        filled = min(width, width * done // self.total)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {note}"
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self.last)))
        elif line != self.last:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = line

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
