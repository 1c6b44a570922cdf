"""How `jpr serve` writes its log: one time format (UTC, ISO 8601 with its offset) in text or JSON lines.

The access log hands its records over in batches (registry/server/access_log.py); the handler
writes a batch's lines in one write when the access log flushes it, not one write per line (a
write is a system call, and each lets go of the GIL, which request threads then queue for).
Any other record is written at once, after the lines before it.

Text: `2026-12-01T15:04:05.123+00:00 INFO jpr.access /jpr.v1.Registry/Lookup member:platform-a ...`.
JSON (`--log-format json`, python-json-logger): one object a line with `time`, `level`, `logger`,
`message`, and a record's own fields as keys of their own (an access record's are in docs/operations.md).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TextIO

ACCESS_LOGGER = "jpr.access"
TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# JSON keys of the standard attributes; every other attribute of a record (`extra=`) keeps its name.
_JSON_KEYS = {"asctime": "time", "levelname": "level", "name": "logger"}


def utc_time(record: logging.LogRecord) -> str:
    """`2026-12-01T15:04:05.123+00:00`: the same on every replica whatever its time zone, and sortable."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return utc_time(record)


def formatter(kind: str) -> logging.Formatter:
    """The formatter of a `--log-format` value: "text" or "json" (the settings refuse anything else)."""
    if kind == "text":
        return TextFormatter()
    from pythonjsonlogger.json import JsonFormatter  # only a JSON log needs it

    class UtcJsonFormatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return utc_time(record)

    # Names in Chinese stay readable; every JSON reader takes UTF-8.
    return UtcJsonFormatter(TEXT, rename_fields=_JSON_KEYS, json_ensure_ascii=False)


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that holds the access log's records until `flush`, then writes them in one go."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != ACCESS_LOGGER or "event" not in record.__dict__:  # not a call's record: now, in order
            self.flush()
            super().emit(record)
            return
        try:
            self._held.append(self.format(record) + self.terminator)
        except Exception:  # as StreamHandler does: a record that cannot be formatted is reported, not raised
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()  # the handler's own lock, which `handle` holds around `emit`
        try:
            if self._held:
                text, self._held = "".join(self._held), []
                self.stream.write(text)
            super().flush()
        finally:
            self.release()


def handler(kind: str, stream: TextIO | None = None) -> logging.Handler:
    """The handler of `jpr serve`: format `kind`, to `stream` (standard error by default)."""
    made = BatchingHandler(stream)
    made.setFormatter(formatter(kind))
    return made


def configure(level: str, kind: str) -> None:
    """The process's log: every record to standard error, at `level` and above, in format `kind`."""
    logging.basicConfig(level=level, handlers=[handler(kind)])
    logging.getLogger("alembic").setLevel(logging.WARNING)
