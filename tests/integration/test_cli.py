"""The `jpr` command: tables by default, --json for scripts, one-line reasons and exit 1 on failure."""

from __future__ import annotations

import json
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
def jpr(registry: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Jpr:
    return Jpr(registry, capsys, tmp_path)


REPORT_FLAGS = [
    "--role", "merchant", "--cn-ric", RIC, "--category", "fraud", "--severity", "serious",
    "--summary", "refund fraud", "--action", "store closed", "--evidence-sha256", "00" * 32,
]


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
    assert [l["subject"] for l in listings["items"]] == [receipt["subject_id"]]
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
    files = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "fresh").iterdir()}
    assert set(files) >= {"registry.toml", "registry.db", "oprf.key", "ca.key", "ca.pem", "server.key", "server.pem", ADMIN_CREDENTIALS}
    for secret in ("oprf.key", "ca.key", "server.key", ADMIN_CREDENTIALS):
        assert files[secret] == 0o600, secret


def test_health_command_answers_serving_with_the_probe_certificate(jpr: Jpr, registry: Registry) -> None:
    probe = str(registry.data_dir / "probe.credentials.json")
    assert jpr("health", "--credentials", probe, "--endpoint", registry.endpoint).strip() == "SERVING"


def test_probe_certificate_may_ask_health_and_nothing_else(registry: Registry) -> None:
    import grpc

    from jpr_client import Credentials
    from jpr_client.client import secure_channel
    from registry.api.jpr.v1 import registry_pb2, registry_pb2_grpc

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
