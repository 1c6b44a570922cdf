"""`jpr admin import`: the association's existing lists, as signed reports accepted with their own dates."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url
from stdnum.cn import ric

from jpr_client import Applicant, Credentials, RegistryClient, RPCError, Role, Verdict, normalize
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.client import secure_channel
from jpr_client.protocol import datetime_to_timestamp
from registry.cli.import_rows import CHINA_STANDARD_TIME
from registry.cli.main import main
from registry.datadir import ADMIN_CREDENTIALS
from tests.conftest import AdminClient, Registry
from tests.integration.reporting import payload, sign

HEADER = "role,cn_ric,phone,display_name,category,severity,reason,banned_by,start_date,end_date"
BAD_RIC = "110105194912310021"  # check digit should be X


def valid_ric(serial: int) -> str:
    body = f"11010519900101{serial % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def row(ric_number: str, phone: str = "", *, name: str = "张三明", start: str = "2024-03-01", end: str = "2029-02-28",
        reason: str = "sold counterfeit cosmetics") -> str:
    return f"merchant,{ric_number},{phone},{name},counterfeit_or_substandard_goods,severe,{reason},Platform A,{start},{end}"


class Importer:
    def __init__(self, registry: Registry, member: Credentials, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.registry, self.tmp_path, self.capsys = registry, tmp_path, capsys
        self.member_file = tmp_path / "association.credentials.json"
        member.save(self.member_file)

    def __call__(self, lines: list[str], *flags: str, encoding: str = "utf-8", name: str = "list.csv") -> tuple[int, str, str]:
        path = self.tmp_path / name
        path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
        code = main([
            "admin", "import", str(path), "--member-credentials", str(self.member_file),
            "--credentials", str(self.registry.data_dir / ADMIN_CREDENTIALS), "--endpoint", self.registry.endpoint, *flags,
        ])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def association(member: Callable[[str], Credentials]) -> Credentials:
    return member("association")


@pytest.fixture
def importer(registry: Registry, association: Credentials, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Importer:
    return Importer(registry, association, tmp_path, capsys)


def verdict(credentials: Credentials, ric_number: str) -> Verdict:
    with RegistryClient(credentials) as client:
        return client.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", ric_number),))).verdict


def listings(admin: AdminClient) -> list[types_pb2.Listing]:
    response: admin_pb2.ListListingsResponse = admin.call("ListListings", admin_pb2.ListListingsRequest(page_size=500))  # type: ignore[assignment]
    return list(response.listings)


def reports(admin: AdminClient) -> list[types_pb2.Report]:
    response: admin_pb2.ListReportsResponse = admin.call("ListReports", admin_pb2.ListReportsRequest(page_size=500))  # type: ignore[assignment]
    return list(response.reports)


def test_importing_a_list_lists_each_subject_with_its_dates_and_reason_and_lookups_deny(
    importer: Importer, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    code, out, _ = importer([HEADER, row(valid_ric(1), "13800138000"), row(valid_ric(2), end="2030-06-30", reason="fake sales data")])
    assert code == 0, out
    assert out.strip().endswith("imported 2, already present 0, ended before today (skipped) 0, bad rows 0")
    found = sorted(listings(admin), key=lambda l: l.listed_until.seconds)
    assert [(l.listed_from.ToDatetime(UTC), l.listed_until.ToDatetime(UTC)) for l in found] == [
        (datetime(2024, 3, 1, tzinfo=CHINA_STANDARD_TIME), datetime(2029, 3, 1, tzinfo=CHINA_STANDARD_TIME)),
        (datetime(2024, 3, 1, tzinfo=CHINA_STANDARD_TIME), datetime(2030, 7, 1, tzinfo=CHINA_STANDARD_TIME)),
    ]
    assert all(l.status == types_pb2.LISTING_STATUS_ACTIVE for l in found)
    assert sorted(r.decision_reason for r in reports(admin)) == ["fake sales data", "sold counterfeit cosmetics"]
    assert {r.reporter for r in reports(admin)} == {"association"}
    platform = member("platform-b")
    assert verdict(platform, valid_ric(1)) is Verdict.DENY
    assert verdict(platform, valid_ric(2)) is Verdict.DENY
    assert verdict(platform, valid_ric(3)) is Verdict.CLEAR
    # The changes feed replays each imported listing as its creation recorded it: the report's own
    # severity, category and role, one platform, the imported dates.
    with RegistryClient(platform) as client:
        created = [client._stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=3)]
        changes = []
        try:
            for change in created[0]:
                changes.append(change)
                if len(changes) == 2:
                    break
        finally:
            created[0].cancel()
    shown = sorted((c.listed_until.seconds, c.severity, list(c.categories), list(c.roles), c.reporting_platforms) for c in changes)
    now = sorted((l.listed_until.seconds, l.severity, list(l.categories), list(l.roles), l.reporting_platforms) for l in found)
    assert [c.kind for c in changes] == [registry_pb2.CHANGE_KIND_CREATED] * 2 and shown == now


def test_a_row_naming_a_listed_subject_extends_its_listing(importer: Importer, admin: AdminClient) -> None:
    importer([HEADER, row(valid_ric(1), end="2028-01-31")])
    code, out, _ = importer([HEADER, row(valid_ric(1), "13800138000", end="2031-12-31", reason="fraud again")], name="second.csv")
    assert code == 0, out
    [listing] = listings(admin)
    assert listing.listed_until.ToDatetime(UTC) == datetime(2032, 1, 1, tzinfo=CHINA_STANDARD_TIME)
    assert len(listing.report_ids) == 2


def test_two_rows_of_one_batch_about_one_person_make_one_listing(importer: Importer, admin: AdminClient) -> None:
    twice = row(valid_ric(1), end="2028-01-31")
    code, out, _ = importer([HEADER, twice, row(valid_ric(1), "13800138000", end="2031-12-31"), twice])
    assert code == 0 and "imported 2, already present 1" in out, out
    [listing] = listings(admin)
    assert listing.listed_until.ToDatetime(UTC) == datetime(2032, 1, 1, tzinfo=CHINA_STANDARD_TIME)
    assert len(listing.report_ids) == 2


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", b"\xef\xbb\xbf"), ("gb18030", b"")])
def test_files_with_a_byte_order_mark_and_in_gb18030_import(importer: Importer, admin: AdminClient, tmp_path: Path, encoding: str,
                                                             bom: bytes) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(bom + f"{HEADER}\n{row(valid_ric(5), reason='销售假冒化妆品')}\n".encode(encoding))
    code = main(["admin", "import", str(path), "--member-credentials", str(importer.member_file), "--encoding", encoding,
                 "--credentials", str(importer.registry.data_dir / ADMIN_CREDENTIALS), "--endpoint", importer.registry.endpoint])
    out, _ = importer.capsys.readouterr()
    assert code == 0, out
    [report] = reports(admin)
    assert report.decision_reason == "销售假冒化妆品"
    assert json.loads(report.envelope)["payloadType"]  # the stored envelope is the signed one


def test_a_gb18030_file_read_as_utf8_is_refused_with_a_hint(importer: Importer) -> None:
    code, _, err = importer([HEADER, row(valid_ric(5), reason="销售假冒化妆品")], encoding="gb18030")
    assert code == 1 and "line 2 is not valid utf-8" in err and "--encoding gb18030" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_rows_are_reported_by_line_and_column_and_their_values_appear_nowhere(
    importer: Importer, registry: Registry, admin: AdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [BAD_RIC, "1380013800", "王小二", valid_ric(7)]
    caplog.set_level(logging.DEBUG)
    lines = [
        HEADER,
        row(valid_ric(1)),
        row(BAD_RIC, name="王小二"),
        row(valid_ric(3), "1380013800"),
        f"anchor,{valid_ric(4)},,,fraud,serious,refund fraud,Platform B,2024-13-01,2029-01-01",
        "merchant,,13800138000,,fraud,serious,refund fraud,Platform B,2024-01-01,2029-01-01",
        row(valid_ric(7), reason=f"uses ID {valid_ric(7)}"),
        row(valid_ric(8), start="2010-01-01", end="2015-01-01"),
    ]
    code, out, err = importer(lines)
    assert code == 1
    assert out.splitlines()[:5] == [
        "line 3: cn_ric: check digit does not match",
        "line 4: phone: not a valid number in its country's plan",
        "line 5: start_date: not a date like 2024-03-01",
        "line 6: no cn_ric, cn_uscc or passport: a listing needs at least one of them",
        "line 7: reason: holds one of the row's identifiers; only the identifier columns may",
    ]
    assert out.splitlines()[5] == "imported 1, already present 0, ended before today (skipped) 1, bad rows 5"
    registry.running.access_log.flush()
    database = Path(make_url(registry.database.url).database or "")
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert len(stored) > 100_000
    logged = caplog.text + "".join(p.read_text(errors="replace") for p in registry.data_dir.glob("*.log"))
    for secret in secrets:
        assert secret not in out + err + logged
        assert secret.encode() not in stored and secret.encode("utf-16-le") not in stored
    [report] = reports(admin)
    signed = types_pb2.ReportPayload.FromString(base64.b64decode(json.loads(report.envelope)["payload"]))
    assert signed.display_name == "张*明"  # names are masked before they are signed


def test_running_an_interrupted_import_again_adds_nothing_twice(importer: Importer, admin: AdminClient) -> None:
    lines = [HEADER, *(row(valid_ric(n), f"1380013{n:04d}") for n in range(1, 9))]
    code, out, _ = importer(lines[:5])  # interrupted after the first half
    assert code == 0 and "imported 4, already present 0" in out
    code, out, _ = importer(lines, "--batch-size", "3")
    assert code == 0 and "imported 4, already present 4" in out, out
    assert len(reports(admin)) == 8 and len(listings(admin)) == 8
    code, out, _ = importer([*lines, lines[1]], "--json")  # and a row repeated within one batch
    assert json.loads(out) == {"imported": 0, "already_present": 9, "ended": 0, "bad_rows": 0, "problems": []}
    assert len(reports(admin)) == 8


def import_item(envelope: bytes, *, start: datetime | None = None, until: datetime | None = None) -> admin_pb2.ImportItem:
    now = datetime.now(UTC)
    return admin_pb2.ImportItem(envelope=envelope, reason="imported", listed_from=datetime_to_timestamp(start or now - timedelta(days=30)),
                                listed_until=datetime_to_timestamp(until or now + timedelta(days=365)))


def refusal(admin: AdminClient, request: admin_pb2.ImportReportsRequest) -> str:
    with pytest.raises(RPCError) as caught:
        admin.call("ImportReports", request)
    return f"{caught.value.status.name}: {caught.value.message}"


def test_bad_import_requests_get_a_precise_status(admin: AdminClient, association: Credentials) -> None:
    with RegistryClient(association) as client:
        envelope = sign(association, payload(client, [("cn_ric", valid_ric(1))]))
    assert refusal(admin, admin_pb2.ImportReportsRequest(member="association")).startswith("INVALID_ARGUMENT: items: 0 items")
    too_many = admin_pb2.ImportReportsRequest(member="association", items=[import_item(envelope)] * 501)
    assert refusal(admin, too_many).startswith("INVALID_ARGUMENT: items: 501 items")
    assert refusal(admin, admin_pb2.ImportReportsRequest(member="nobody", items=[import_item(envelope)])).startswith("NOT_FOUND: member")
    bad_stamp = import_item(envelope)
    bad_stamp.listed_until.seconds = 10**12
    assert refusal(admin, admin_pb2.ImportReportsRequest(member="association", items=[bad_stamp])).startswith(
        "INVALID_ARGUMENT: items[0].listed_until"
    )


def test_each_bad_item_is_refused_alone_with_the_status_submit_report_would_give(
    admin: AdminClient, association: Credentials, member: Callable[[str], Credentials]
) -> None:
    other = member("platform-b")
    with RegistryClient(association) as client:
        good = sign(association, payload(client, [("cn_ric", valid_ric(1))]))
        retyped = sign(association, payload(client, [("cn_ric", valid_ric(2))]))
    with RegistryClient(other) as client:
        foreign = sign(other, payload(client, [("cn_ric", valid_ric(3))]))
    now = datetime.now(UTC)
    items = [
        import_item(good),
        import_item(b"not an envelope"),
        import_item(foreign),
        import_item(retyped, until=now - timedelta(days=1)),
        admin_pb2.ImportItem(envelope=retyped, reason="no dates"),
        import_item(retyped, start=now + timedelta(days=30)),
        import_item(good),
    ]
    response: admin_pb2.ImportReportsResponse = admin.call(  # type: ignore[assignment]
        "ImportReports", admin_pb2.ImportReportsRequest(member="association", items=items)
    )
    outcomes = [(admin_pb2.ImportOutcome.Name(r.outcome).removeprefix("IMPORT_OUTCOME_"), r.status) for r in response.results]
    assert outcomes == [
        ("IMPORTED", ""),
        ("REFUSED", "INVALID_ARGUMENT"),
        ("REFUSED", "PERMISSION_DENIED"),  # signed by another member's key
        ("REFUSED", "FAILED_PRECONDITION"),  # ended already
        ("REFUSED", "INVALID_ARGUMENT"),
        ("REFUSED", "INVALID_ARGUMENT"),  # starts in the future
        ("ALREADY_PRESENT", ""),
    ]
    assert response.results[0].listing_id and response.results[6].listing_id == response.results[0].listing_id
    assert "listed_until" in response.results[3].message and "listed_from" in response.results[5].message
    assert len(listings(admin)) == 1


def test_a_report_id_another_member_used_is_refused_and_its_report_left_alone(
    admin: AdminClient, association: Credentials, member: Callable[[str], Credentials]
) -> None:
    other = member("platform-b")
    with RegistryClient(other) as client:
        theirs = payload(client, [("cn_ric", valid_ric(3))])
    with secure_channel(other) as channel:
        registry_pb2_grpc.RegistryStub(channel).SubmitReport(registry_pb2.SubmitReportRequest(envelope=sign(other, theirs)), timeout=10)
    with RegistryClient(association) as client:
        ours = sign(association, payload(client, [("cn_ric", valid_ric(4))], report_id=theirs.report_id))
    response: admin_pb2.ImportReportsResponse = admin.call(  # type: ignore[assignment]
        "ImportReports", admin_pb2.ImportReportsRequest(member="association", items=[import_item(ours)])
    )
    [result] = response.results
    assert (result.outcome, result.status) == (admin_pb2.IMPORT_OUTCOME_REFUSED, "ALREADY_EXISTS")
    assert [r.status for r in reports(admin)] == [types_pb2.REPORT_STATUS_SUBMITTED] and not listings(admin)


def test_a_row_that_merges_two_subjects_listed_earlier_in_its_batch_names_the_survivor(
    admin: AdminClient, association: Credentials
) -> None:
    """Rows 1 and 2 list two people; row 3 shows they are one (two strong tokens) and merges them. The merge
    moves the second listing to the survivor while the batch's transaction holds that listing, loaded when
    row 2 was accepted: row 3's answer and the stored rows must name the survivor, not the merged subject."""
    now = datetime.now(UTC)
    with RegistryClient(association) as client:
        first = sign(association, payload(client, [("cn_ric", valid_ric(1))]))
        second = sign(association, payload(client, [("cn_ric", valid_ric(2))]))
        both = sign(association, payload(client, [("cn_ric", valid_ric(1)), ("cn_ric", valid_ric(2))]))
    items = [
        import_item(first, until=now + timedelta(days=100)),
        import_item(second, until=now + timedelta(days=400)),  # the later end: row 3's current listing
        import_item(both, until=now + timedelta(days=200)),
    ]
    response: admin_pb2.ImportReportsResponse = admin.call(  # type: ignore[assignment]
        "ImportReports", admin_pb2.ImportReportsRequest(member="association", items=items)
    )
    assert [r.outcome for r in response.results] == [admin_pb2.IMPORT_OUTCOME_IMPORTED] * 3
    stored = reports(admin)
    survivor = {r.subject_id for r in stored}
    assert len(survivor) == 1, stored  # all three reports on one subject
    assert {l.subject_id for l in listings(admin)} == survivor
    assert response.results[2].subject_id in survivor, response.results
    assert response.results[2].listing_id == response.results[1].listing_id  # extended: the listing ending last
