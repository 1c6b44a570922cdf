"""How the CLI prints: readable tables by default, JSON for scripts."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-ready form of domain values (dataclasses, enums, datetimes, bytes)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 64 else base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    json.dump(plain(value), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, str) and len(value) >= 25 and value[4:5] == "-" and "T" in value:
        return value[:19].replace("T", " ") + "Z"  # every time the registry gives is UTC
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Print aligned columns; an empty result says so instead of printing nothing."""
    if not rows:
        print("(none)")
        return
    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


class Progress:
    """A running count on one line of stderr, redrawn in place, for a long command watched at a terminal.

    With a `total`, a bar and a rate too. `shown` is false for scripts: see `progress_shown`.
    """

    def __init__(self, label: str, *, shown: bool, total: int | None = None, unit: str = "") -> None:
        self._label, self._shown, self._total, self._unit = label, shown, total, unit
        self._started = time.monotonic()
        self.count = 0

    def add(self, done: int) -> None:
        self.show(self.count + done)

    def of(self, total: int, count: int) -> None:
        """`count` done of a `total` learnt as the work goes (a database that grows while it is copied)."""
        self._total = total
        self.show(count)

    def show(self, count: int) -> None:
        self.count = count
        if self._shown:
            sys.stderr.write(f"\r{self._label}: {self._line()}")
            sys.stderr.flush()

    def _line(self) -> str:
        if self._total is None:
            return f"{self.count:,}"
        total = max(self._total, 1)
        filled = BAR_WIDTH * min(self.count, total) // total
        rate = self.count / max(time.monotonic() - self._started, 1e-6)
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.count:,}/{total:,} {self._unit}, {rate:,.0f}/s "  # the space wipes a longer rate

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


BAR_WIDTH = 30


def progress_shown(args: Any) -> bool:
    """Progress is for a person at a terminal: never under --json, never into a pipe or a file."""
    return sys.stderr.isatty() and not getattr(args, "json", False)


def fields(pairs: Mapping[str, Any]) -> None:
    """Print one record as aligned `name  value` lines."""
    width = max(len(k) for k in pairs)
    for key, value in pairs.items():
        print(f"{key.ljust(width)}  {cell(value)}")
