"""How the CLI prints: readable tables by default, JSON for scripts.

The JSON dialect every `--json` output speaks is defined here, once (README, "Scripting with
--json"): times in UTC with an explicit offset (`2027-01-31T00:00:00+00:00`), bytes and digests
in lower-case hex, enum values without their protobuf prefix (`ACCEPTED`, `MERCHANT`) and
identifier types as the flags and files spell them (`cn_ric`).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from jpr_client.model import IdentifierType

# The one protobuf enum spelled in lower case: identifier types are `cn_ric` in flags, files and tokens.
_LOWER_CASE_ENUMS = frozenset({"IdentifierType"})


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts (README: Scripting with --json); errors too, on stderr")


def plain(value: Any) -> Any:
    """A JSON-ready form of domain values (dataclasses, enums, datetimes, bytes) in the CLI's dialect."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, IdentifierType):
        return value.value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Message):
        return message(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def utc(moment: datetime | Timestamp) -> str:
    """A time as ISO 8601 in UTC with its offset; a naive datetime is UTC (protobuf's ToDatetime() gives those)."""
    if isinstance(moment, Timestamp):
        moment = moment.ToDatetime(UTC)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


def optional_utc(stamp: Timestamp, present: bool) -> str | None:
    return utc(stamp) if present else None


def enum_name(enum_type: Any, number: int) -> str:
    """A protobuf enum value as the dialect spells it: `REPORT_STATUS_ACCEPTED` -> `ACCEPTED`, `IDENTIFIER_TYPE_CN_RIC` -> `cn_ric`."""
    return _enum_value(enum_type.DESCRIPTOR, number)


def enum_prefix(descriptor: EnumDescriptor) -> str:
    """`ReportStatus` -> `REPORT_STATUS_`: the prefix every value of a protobuf enum carries (buf's style rule)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", descriptor.name).upper() + "_"


def _enum_value(descriptor: EnumDescriptor, number: int) -> str:
    name = descriptor.values_by_number[number].name.removeprefix(enum_prefix(descriptor))
    return name.lower() if descriptor.name in _LOWER_CASE_ENUMS else name


def message(value: Message) -> dict[str, Any]:
    """Every field of a protobuf message in the dialect (unset messages as null), by its proto field name.

    A `detail_json` field is the registry's event record: it appears parsed, as `detail`.
    """
    result: dict[str, Any] = {}
    for field in value.DESCRIPTOR.fields:
        raw = getattr(value, field.name)
        if field.name == "detail_json":
            result["detail"] = json.loads(raw or "{}")
        elif field.is_repeated:
            result[field.name] = [_field_value(field.enum_type, item) for item in raw]
        elif field.message_type is not None and not value.HasField(field.name):
            result[field.name] = None
        else:
            result[field.name] = _field_value(field.enum_type, raw)
    return result


def _field_value(enum_type: Any, raw: Any) -> Any:  # a pure-Python or a upb EnumDescriptor, or None
    if enum_type is not None:
        return _enum_value(enum_type, raw)
    if isinstance(raw, Timestamp):
        return utc(raw)
    if isinstance(raw, Message):
        return message(raw)
    return plain(raw)


def emit_json(value: Any) -> None:
    json.dump(plain(value), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def emit_error(status: str, message_text: str, request_id: str | None = None) -> None:
    """A failure as `--json` reports it, on stderr: {"error": {"status": ..., "message": ...}}, and
    "request_id" when the registry answered the call."""
    error = {"status": status, "message": message_text} | ({"request_id": request_id} if request_id else {})
    json.dump({"error": error}, sys.stderr, ensure_ascii=False)
    sys.stderr.write("\n")


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
