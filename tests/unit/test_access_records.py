"""The access log's records on their way out: made from a template, written by `jpr serve`'s handler a batch at a time."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from registry.server.access_log import MESSAGE, RecordMaker
from registry.server.log_format import BatchingHandler, formatter

WHEN = datetime(2026, 12, 1, 15, 4, 5, 123456, tzinfo=UTC)
ENTRY = (WHEN, "/jpr.v1.Registry/Lookup", "member", "platform-a", "ab" * 32, "OK", 1.25, 1, 0, "0123456789abcdef", "call")
REFUSED = (WHEN, "/jpr.v1.Registry/Lookup", "", "", "", "UNAUTHENTICATED", 0.5, 0, 0, "fedcba9876543210", "call")


def made_the_usual_way(entry: tuple) -> logging.LogRecord:  # type: ignore[type-arg]
    when, method, role, name, sha256, status, ms, items, matched, request_id, event = entry
    fields = {"event": event, "method": method, "role": role or None, "caller": name or None, "certificate_sha256": sha256 or None,
              "status": status, "duration_ms": round(ms, 3), "items": items, "matched": matched, "request_id": request_id or None}
    args = (method, "", role or "-", name or "-", sha256 or "-", status, round(ms, 3), items, matched, request_id)
    record = logging.getLogger("jpr.access").makeRecord("jpr.access", logging.INFO, "x.py", 0, MESSAGE, args, None, extra=fields)
    record.created = when.timestamp()
    record.msecs = (record.created - int(record.created)) * 1000
    return record


def test_a_record_from_the_template_formats_as_one_made_by_make_record_in_text_and_json() -> None:
    maker = RecordMaker()
    for entry in (ENTRY, REFUSED):
        for kind in ("text", "json"):
            ours, theirs = formatter(kind).format(maker.of(entry)), formatter(kind).format(made_the_usual_way(entry))
            assert ours == theirs
    line = json.loads(formatter("json").format(maker.of(REFUSED)))
    assert line["time"] == "2026-12-01T15:04:05.123+00:00" and line["caller"] is None and line["request_id"] == "fedcba9876543210"


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False) | st.sampled_from([7.35004, 0.05, 0.1499999, 2.25, 1234.5649]))
def test_the_text_lines_duration_is_the_json_fields_at_one_decimal(milliseconds: float) -> None:
    """A reader who matches the two (or greps a text line for what JSON gave) finds the same figure: the
    text rounds the JSON field's value, not the unrounded one (7.35004 ms is 7.35 in JSON, so 7.3, not 7.4)."""
    record = RecordMaker().of(ENTRY[:6] + (milliseconds,) + ENTRY[7:])
    text = formatter("text").format(record)
    assert f" OK {json.loads(formatter('json').format(record))['duration_ms']:.1f}ms " in text


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_batch_of_call_records_is_written_in_one_write_when_flushed_and_other_records_at_once_after_it() -> None:
    stream = CountedWrites()
    handler = BatchingHandler(stream)
    handler.setFormatter(formatter("text"))
    maker = RecordMaker()
    for _ in range(50):
        handler.handle(maker.of(ENTRY))
    assert stream.writes == 0 and stream.getvalue() == ""
    warning = logging.getLogger("jpr.access").makeRecord("jpr.access", logging.WARNING, "x.py", 0, "refused for %s", ("member:x",), None)
    handler.handle(warning)  # not a call's record: written now, after the 50 lines held before it
    lines = stream.getvalue().splitlines()
    assert len(lines) == 51 and lines[-1].endswith("WARNING jpr.access refused for member:x") and stream.writes == 2
    handler.handle(maker.of(ENTRY))
    handler.flush()
    assert len(stream.getvalue().splitlines()) == 52 and stream.writes == 3
