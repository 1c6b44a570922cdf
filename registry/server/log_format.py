"""How `jpr serve` writes its log: one time format (UTC, ISO 8601 with its offset) in text or JSON lines.

Text: `2026-12-01T15:04:05.123+00:00 INFO jpr.access /jpr.v1.Registry/Lookup member:platform-a ...`.
JSON (`--log-format json`, python-json-logger): one object a line with `time`, `level`, `logger`,
`message`, and a record's own fields as keys of their own (an access record's are in docs/operations.md).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

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


def configure(level: str, kind: str) -> None:
    """The process's log: every record to standard error, at `level` and above, in format `kind`."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(kind))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)
