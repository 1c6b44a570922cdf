"""`jpr admin export`: the listings, one row each, as CSV or JSON lines, for the regulator and for members.

Built from `Admin/ListListings` pages with their reports' words (`with_reports`), so it never
holds a token, an evidence digest or an envelope. The reporting platforms' names and the
reports' free text go in only when asked for: a file for members carries neither.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.cli.output import Progress, enum_name, utc

COLUMNS = (
    "listing_id", "subject_id", "roles", "categories", "severity", "listed_from", "listed_until",
    "reporting_platforms", "display_names",
)
REPORTER_COLUMNS = ("reporters",)
FREE_TEXT_COLUMNS = ("summaries", "platform_actions")

Row = dict[str, Any]


@dataclass(frozen=True)
class Selection:
    """Which optional columns an export carries."""

    reporters: bool = False  # the reporting platforms' names: for the regulator, not for members
    free_text: bool = False  # each report's summary and platform action, in report order

    @property
    def columns(self) -> tuple[str, ...]:
        columns: tuple[str, ...] = COLUMNS
        if self.reporters:
            columns += REPORTER_COLUMNS
        if self.free_text:
            columns += FREE_TEXT_COLUMNS
        return columns


def pages(
    call: Callable[[admin_pb2.ListListingsRequest], admin_pb2.ListListingsResponse], request: admin_pb2.ListListingsRequest
) -> Iterator[admin_pb2.ListListingsResponse]:
    """Every page of `request`, with the listings' reports, following next_page_token to the end."""
    request.with_reports = True
    while True:
        page = call(request)
        yield page
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def row(listing: types_pb2.Listing, reports: Mapping[str, admin_pb2.ListingReport], selection: Selection) -> Row:
    behind = [reports[report_id] for report_id in listing.report_ids]
    values: Row = {
        "listing_id": listing.listing_id,
        "subject_id": listing.subject_id,
        "roles": [enum_name(types_pb2.Role, r) for r in listing.roles],
        "categories": [enum_name(types_pb2.Category, c) for c in listing.categories],
        "severity": enum_name(types_pb2.Severity, listing.severity),
        "listed_from": utc(listing.listed_from),
        "listed_until": utc(listing.listed_until),
        "reporting_platforms": listing.reporting_platforms,
        "display_names": _distinct(r.display_name for r in behind),
        "reporters": _distinct(r.reporter for r in behind),
        "summaries": [r.summary for r in behind],
        "platform_actions": [r.platform_action for r in behind],
    }
    return {column: values[column] for column in selection.columns}


def write(pages: Iterable[admin_pb2.ListListingsResponse], out: TextIO, form: str, selection: Selection, progress: Progress) -> int:
    """Write every listing of `pages` to `out` in `form` (a key of FORMATS); how many were written."""
    emit = FORMATS[form](out, selection.columns)
    try:
        for page in pages:
            reports = {r.report_id: r for r in page.reports}
            for listing in page.listings:
                emit(row(listing, reports, selection))
            progress.add(len(page.listings))
    finally:
        progress.close()
    return progress.count


def _csv(out: TextIO, columns: tuple[str, ...]) -> Callable[[Row], object]:
    writer = csv.writer(out)
    writer.writerow(columns)
    return lambda values: writer.writerow([_inert(_joined(v) if isinstance(v, list) else v) for v in values.values()])


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"):
# a platform's summary or display name must not run on the regulator's machine.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: object) -> object:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def _jsonl(out: TextIO, columns: tuple[str, ...]) -> Callable[[Row], object]:
    return lambda values: out.write(json.dumps(values, ensure_ascii=False) + "\n")


FORMATS: Mapping[str, Callable[[TextIO, tuple[str, ...]], Callable[[Row], object]]] = {"csv": _csv, "jsonl": _jsonl}


def _joined(items: list[Any]) -> str:
    """A multi-valued CSV cell: items joined with ';', a ';' or '\\' inside an item escaped with '\\', so it splits back exactly."""
    return ";".join(str(item).replace("\\", "\\\\").replace(";", "\\;") for item in items)


def _distinct(values: Iterable[str]) -> list[str]:
    """The non-empty values, each once, in their first order."""
    return list(dict.fromkeys(v for v in values if v))
