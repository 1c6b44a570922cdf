"""`jpr admin import FILE.csv`: the lists the association already keeps, as signed, accepted reports.

Rows are normalized and tokenized here (the association's member blinds them, the
registry evaluates blinded points only), signed with the member's key, and filed
and accepted in batches through `Admin/ImportReports` with their own dates and
reason. Report ids are derived from each row's tokens and content, so running the
same import again, after an interruption or not, adds nothing twice.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.client import NewReport, RegistryClient
from jpr_client.credentials import Credentials
from jpr_client.model import Token
from jpr_client.protocol import datetime_to_timestamp
from registry.cli import output
from registry.cli.connect import reaching
from registry.cli.import_rows import BadRow, ListedRow, decode, read_rows

T = TypeVar("T")

# Report ids of imported rows: UUIDv5 in this namespace over the member, the row's tokens
# (never its raw values, which a hash would expose to guessing) and its content.
IMPORT_NAMESPACE = uuid.UUID("6f1d4c2e-8a57-5b1e-9c3d-2f4a6b8c0e13")
DEFAULT_BATCH = 250
MAX_BATCH = 500  # Admin/ImportReports takes at most 500 items
_AHEAD = 2  # batches tokenized and signed while the registry stores the one before


@dataclass
class Tally:
    imported: int = 0
    already_present: int = 0
    ended: int = 0
    bad: list[BadRow] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.imported + self.already_present + self.ended + len(self.bad)


def add_import_flags(parser: argparse.ArgumentParser) -> None:
    parser.description = "Columns and rules: docs/import.md. Raw identifiers stay here; only tokens reach the registry."
    parser.add_argument("file", help="CSV file with a header row (docs/import.md)")
    parser.add_argument("--member-credentials", required=True, help="credentials of the association's own member: it signs the reports")
    parser.add_argument("--encoding", default="utf-8", help="the file's encoding: utf-8 (default, with or without BOM) or gb18030")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"rows per ImportReports call (1 to {MAX_BATCH})")


def run_import(args: argparse.Namespace, admin_call: Callable[[str, admin_pb2.ImportReportsRequest], admin_pb2.ImportReportsResponse],
               member: Credentials) -> int:
    if not 0 < args.batch_size <= MAX_BATCH:
        raise ValueError(f"--batch-size {args.batch_size}: give 1 to {MAX_BATCH}")
    if member.role != "member":
        raise ValueError(f"--member-credentials: {args.member_credentials} are {member.role} credentials; give the member's")
    path = Path(args.file)
    data = path.read_bytes()
    tally = Tally()
    text = decode(data, args.encoding, path.name)
    # Rows are read as they are imported, so that reading overlaps the registry's work.
    rows = _listable(read_rows(text, path.name), tally)
    importer = _Importer(member, admin_call, evidence=hashlib.sha256(data).digest(), created_at=datetime.now(UTC).replace(microsecond=0))
    # The data lines: the rows, unless cells hold line breaks.
    progress = output.Progress("import", shown=output.progress_shown(args), total=text.count("\n") - 1, unit="rows")
    try:
        with reaching(member.endpoint), RegistryClient(member, timeout=60.0) as client:
            client.connect()
            for batch, envelopes in _ahead(lambda b: importer.sign(client, b), _batches(rows, args.batch_size)):
                importer.file(batch, envelopes, tally)
                progress.show(tally.done)
    except KeyboardInterrupt:
        progress.close()
        print(f"jpr: interrupted after {tally.done:,} rows; run the same command again to go on (nothing is imported twice)", file=sys.stderr)
        return 130
    progress.close()
    _print_summary(args, tally)
    return 1 if tally.bad else 0


def _listable(parsed: Iterable[ListedRow | BadRow], tally: Tally) -> Iterator[ListedRow]:
    """Rows to import; bad ones and those whose punishment has ended are counted instead."""
    now = datetime.now(UTC)
    for row in parsed:
        if isinstance(row, BadRow):
            tally.bad.append(row)
        elif row.listed_until <= now:
            tally.ended += 1
        else:
            yield row


class _Importer:
    def __init__(self, member: Credentials, admin_call: Callable[[str, admin_pb2.ImportReportsRequest], admin_pb2.ImportReportsResponse],
                 *, evidence: bytes, created_at: datetime) -> None:
        self._member = member
        self._call = admin_call
        self._evidence = evidence
        self._created_at = created_at

    def sign(self, client: RegistryClient, batch: Sequence[ListedRow]) -> list[bytes]:
        """The batch's envelopes: one Tokenize call for every identifier in it."""
        tokens = iter(client.tokenize([i for row in batch for i in row.identifiers]))
        envelopes = []
        for row in batch:
            row_tokens = [next(tokens) for _ in row.identifiers]
            envelopes.append(client.sign_tokenized(self._report(row, row_tokens), row_tokens))
        return envelopes

    def _report(self, row: ListedRow, tokens: Sequence[Token]) -> NewReport:
        return NewReport(
            role=row.role,
            identifiers=row.identifiers,
            category=row.category,
            severity=row.severity,
            summary=f"banned by {row.banned_by}: {row.reason}",
            platform_action=f"listed by the association; banned by {row.banned_by}",
            evidence_sha256=self._evidence,  # the list file itself is the evidence the association keeps
            occurred_at=row.listed_from,
            display_name=row.display_name,
            report_id=self.report_id(row, tokens),
            created_at=self._created_at,
        )

    def report_id(self, row: ListedRow, tokens: Sequence[Token]) -> str:
        content = [
            self._member.name, row.role.value, row.category.value, row.severity.value, row.reason, row.banned_by, row.display_name,
            row.listed_from.isoformat(), row.listed_until.isoformat(), *sorted(f"{t.type.value}:{t.value.hex()}" for t in tokens),
        ]
        return str(uuid.uuid5(IMPORT_NAMESPACE, "\n".join(content)))

    def file(self, batch: Sequence[ListedRow], envelopes: Sequence[bytes], tally: Tally) -> None:
        items = [
            admin_pb2.ImportItem(envelope=envelope, reason=row.reason, listed_from=datetime_to_timestamp(row.listed_from),
                                 listed_until=datetime_to_timestamp(row.listed_until))
            for row, envelope in zip(batch, envelopes, strict=True)
        ]
        response = self._call("ImportReports", admin_pb2.ImportReportsRequest(member=self._member.name, items=items))
        for row, result in zip(batch, response.results, strict=True):
            if result.outcome == admin_pb2.IMPORT_OUTCOME_IMPORTED:
                tally.imported += 1
            elif result.outcome == admin_pb2.IMPORT_OUTCOME_ALREADY_PRESENT:
                tally.already_present += 1
            else:
                tally.bad.append(BadRow(row.line, f"refused by the registry: {result.status}: {result.message}"))


def _batches(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    items = iter(rows)
    while batch := list(itertools.islice(items, size)):
        yield batch


def _ahead(work: Callable[[Sequence[T]], list[bytes]], batches: Iterator[Sequence[T]]) -> Iterator[tuple[Sequence[T], list[bytes]]]:
    """Each batch with `work(batch)`, computed on another thread up to `_AHEAD` batches in advance."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jpr-sign") as pool:
        pending: deque[tuple[Sequence[T], Future[list[bytes]]]] = deque()
        for batch in batches:
            pending.append((batch, pool.submit(work, batch)))
            if len(pending) > _AHEAD:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _print_summary(args: argparse.Namespace, tally: Tally) -> None:
    bad = sorted(tally.bad, key=lambda b: b.line)
    summary = {"imported": tally.imported, "already_present": tally.already_present, "ended": tally.ended, "bad_rows": len(bad)}
    if args.json:
        output.emit_json({**summary, "problems": [{"line": b.line, "problem": b.problem} for b in bad]})
        return
    for row in bad:
        print(f"line {row.line}: {row.problem}")
    print(f"imported {tally.imported:,}, already present {tally.already_present:,}, ended before today (skipped) {tally.ended:,}, "
          f"bad rows {len(bad):,}")
