"""No raw identifier reaches the registry: not its database, not its log."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest
from sqlalchemy import select

from jpr_client import Applicant, Category, Credentials, NewReport, RegistryClient, Role, Severity, normalize
from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.crypto import dsse
from registry.server.log_format import formatter
from registry.store.models import Base, ReportRow
from tests.conftest import AdminClient, Registry

RAW = {
    "cn_ric": "11010519491231002X",
    "cn_uscc": "91350100M000100Y43",
    "passport": "CHN E98765432",
    "phone": "138 0013 8000",
    "email": "Zhang.Wei@Example.COM",
    "platform_account": "platform-a:anchor-zw-777",
}


def spellings() -> set[bytes]:
    """Each raw value as typed and as normalized, in the encodings a store or log might use."""
    values = set(RAW.values()) | {normalize(k, v).value for k, v in RAW.items()} | {"13800138000", "E98765432"}
    found = set()
    for value in values:
        found |= {value.encode("utf-8"), value.encode("utf-16-le"), value.lower().encode(), value.encode().hex().encode()}
    return found


def dump_database(registry: Registry) -> bytes:
    """Every value of every row of every table, on either backend."""
    chunks: list[bytes] = []
    with registry.database.read() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                chunks.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
        # Envelopes carry their payload in base64: look inside too.
        for (envelope,) in conn.execute(select(ReportRow.envelope)):
            chunks.append(dsse.parse_envelope(envelope).payload)
    return b"\n".join(chunks)


def everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record as both formats write it: its message, and its fields (`extra=`) as JSON lines carry them."""
    as_json = formatter("json")
    return "\n".join(line for record in records for line in (record.getMessage(), as_json.format(record)))


def test_database_files_and_logs_never_hold_a_raw_identifier(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    identifiers = tuple(normalize(k, v) for k, v in RAW.items())
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        receipt = a.submit_report(
            NewReport(
                role=Role.ANCHOR, identifiers=identifiers, category=Category.FRAUD, severity=Severity.SEVERE,
                summary="fake orders", platform_action="banned", evidence_sha256=hashlib.sha256(b"e").digest(),
                display_name="张*伟",
            )
        )
        admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id))
        b.lookup(Applicant(role=Role.ANCHOR, identifiers=identifiers))
        b.lookup_batch([Applicant(role=Role.ANCHOR, identifiers=(i,)) for i in identifiers])
    stored = dump_database(registry)
    registry.running.stop(grace=None)  # flush and close the database before reading its files
    stored += b"".join(p.read_bytes() for p in registry.data_dir.iterdir() if p.is_file())
    assert b"fake orders" in stored  # the dump did see the stored report
    logged = everything_logged(caplog.records).encode()
    assert b"Tokenize" in logged and b"SubmitReport" in logged  # the log did record the calls
    for secret in spellings():
        assert secret not in stored, f"{secret!r} found in the data directory"
        assert secret not in logged, f"{secret!r} found in the log"
