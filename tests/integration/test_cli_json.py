"""Every `jpr` command speaks one JSON dialect under --json, and its failures tell a script why.

The rules (README, "Scripting with --json") are checked mechanically on every command's output:
times in UTC with an explicit offset, one key per concept, enum values without protobuf prefixes,
digests in lower-case hex. The commands come from the parser itself, so a new one without --json,
or one this scenario does not run, fails here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from stdnum.cn import ric

from jpr_client import Credentials, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from jpr_client.crypto import dsse
from registry.cli.main import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, build_parser, main
from registry.crypto import pki
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from tests.conftest import Registry
from tests.integration.test_flood_guard import burst
from tests.integration.test_lookup import RIC  # the one burst() looks up

# Not --json: what these print is not a result. `serve` logs while it runs; `admin export` writes the
# data itself in --format csv|jsonl (its jsonl lines are checked like JSON below).
WITHOUT_JSON = {("serve",), ("admin", "export")}
BANNED_KEYS = {"subject", "listing", "report", "appeal", "sha256", "platforms", "per_day"}  # the *_id, *_sha256 and full names
DIGEST = re.compile(r"[0-9a-f]{64}")
LOOKS_LIKE_A_TIME = re.compile(r"\d{4}-\d{2}-\d{2}")
BASE64 = re.compile(r"[A-Za-z0-9+/]{20,}={1,2}")


def ric_number(serial: int) -> str:
    body = f"11010519900101{serial:03d}"
    return body + ric.calc_check_digit(body + "0")


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable command, by its first name (aliases lead to the same parser)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield path, parser
        return
    seen: set[int] = set()
    for name, child in groups[0].choices.items():
        if id(child) not in seen:
            seen.add(id(child))
            yield from leaf_commands(child, (*path, name))


COMMANDS = dict(leaf_commands(build_parser()))


def enum_prefixes() -> tuple[str, ...]:
    """Each protobuf enum's value prefix (REPORT_STATUS_, SEVERITY_, ...), from the protocol's own descriptors."""
    enums = []
    for module in (types_pb2, admin_pb2, registry_pb2):
        enums += list(module.DESCRIPTOR.enum_types_by_name.values())
        enums += [e for m in module.DESCRIPTOR.message_types_by_name.values() for e in m.enum_types]
    prefixes = {os.path.commonprefix([v.name for v in e.values]).rpartition("_")[0] + "_" for e in enums}
    return tuple(sorted(prefixes))


PREFIXES = enum_prefixes()
UPPER_IDENTIFIER_TYPES = {v.name.removeprefix("IDENTIFIER_TYPE_") for v in types_pb2.IdentifierType.DESCRIPTOR.values}


def dialect_problems(value: Any, where: str = "$") -> list[str]:
    """Where `value` (parsed JSON) breaks a rule of the dialect. Inside an event's `detail`, the registry's
    own record, key names are the registry's; times, enums and digests still follow the rules."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in BANNED_KEYS and not isinstance(item, dict) and ".detail" not in where:
                problems.append(f"{where}.{key}: say {key}_id, certificate_sha256, reporting_platforms or onboarding_per_day")
            if key.endswith("_sha256") and not all(d is None or (isinstance(d, str) and DIGEST.fullmatch(d)) for d in _items(item)):
                problems.append(f"{where}.{key}: {item!r} is not 64 lower-case hex digits")
            problems += dialect_problems(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += dialect_problems(item, f"{where}[{index}]")
    elif isinstance(value, str):
        problems += [f"{where}: {value!r} {p}" for p in _string_problems(value)]
    return problems


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _string_problems(text: str) -> list[str]:
    problems = []
    if LOOKS_LIKE_A_TIME.match(text):
        try:
            offset = datetime.fromisoformat(text).utcoffset()
            if offset is None or offset.total_seconds() != 0:
                problems.append("is not a time in UTC with an explicit offset")
        except ValueError:
            problems.append("starts like a date but is not ISO 8601")
    if text.startswith(PREFIXES):
        problems.append("carries a protobuf enum prefix")
    if text in UPPER_IDENTIFIER_TYPES:
        problems.append("is an identifier type; spell it as the flags do (cn_ric)")
    if BASE64.fullmatch(text):
        problems.append("looks like base64; bytes are hex")
    return problems


def test_every_command_takes_json() -> None:
    missing = [" ".join(path) for path, parser in COMMANDS.items() if path not in WITHOUT_JSON and "--json" not in parser._option_string_actions]
    assert not missing, f"commands without --json: {missing}"


def test_the_dialect_check_catches_each_rule() -> None:
    bad = {"subject": "S1", "listed_until": "2027-01-31T00:00:00", "status": "REPORT_STATUS_ACCEPTED", "type": "CN_RIC",
           "certificate_sha256": "AB" * 32, "envelope": "QUJD" * 8 + "QQ=="}
    assert len(dialect_problems(bad)) == 6
    assert not dialect_problems({"subject_id": "S1", "listed_until": "2027-01-31T00:00:00+00:00", "status": "ACCEPTED", "type": "cn_ric",
                                 "report": {"certificate_sha256": "ab" * 32}, "detail": {"appeal": "A1"}})


class Jpr:
    """Runs `jpr ... --json` in this process; records which commands ran."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.ran: set[tuple[str, ...]] = set()

    def __call__(self, *argv: str, json_flag: bool = True) -> Any:
        """The command's parsed JSON output, after checking it follows the dialect."""
        code, out, err = self.run(*argv, json_flag=json_flag)
        assert code == 0, f"jpr {' '.join(argv)}: exit {code}: {err}"
        parsed = json.loads(out) if json_flag else [json.loads(line) for line in out.splitlines()]
        assert not dialect_problems(parsed), f"jpr {' '.join(argv)}: {dialect_problems(parsed)}"
        return parsed

    def refused(self, *argv: str) -> tuple[int, dict[str, str]]:
        """The exit code and the {"status", "message"} (and "request_id" when the registry answered) of a command that fails."""
        code, out, err = self.run(*argv)
        assert out == "" and code != 0, f"jpr {' '.join(argv)}: exit {code}: {out}"
        error = json.loads(err)
        assert list(error) == ["error"] and {"status", "message"} <= set(error["error"]) <= {"status", "message", "request_id"}, err
        return code, error["error"]

    def run(self, *argv: str, json_flag: bool = True) -> tuple[int, str, str]:
        self.ran.add(self.command(argv))
        try:
            code = main([*argv, *(["--json"] if json_flag else [])])
        except SystemExit as exited:  # a usage error leaves as argparse does
            code = int(exited.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    @staticmethod
    def command(argv: tuple[str, ...]) -> tuple[str, ...]:
        words = [w for w in argv if not w.startswith("-")]
        return next(path for path in sorted(COMMANDS, key=len, reverse=True) if tuple(words[: len(path)]) == path)


@pytest.fixture
def jpr(registry: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Jpr:
    monkeypatch.setenv("JPR_ISSUER", str(registry.data_dir / "issuer"))
    monkeypatch.setenv("JPR_CREDENTIALS", str(registry.data_dir / ADMIN_CREDENTIALS))
    monkeypatch.setenv("JPR_ENDPOINT", registry.endpoint)
    return Jpr(capsys)


def report_flags(credentials: Path, ric_value: str, *more: str) -> list[str]:
    return ["report", "--credentials", str(credentials), "--role", "merchant", "--cn-ric", ric_value, *more, "--category", "fraud",
            "--severity", "serious", "--summary", "refund fraud", "--action", "store closed", "--evidence-sha256", "00" * 32]


def closed_port() -> int:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        return int(held.getsockname()[1])


@pytest.mark.long
def test_every_command_speaks_one_json_dialect(jpr: Jpr, registry: Registry, tmp_path: Path) -> None:
    local_commands(jpr, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    members = enroll_members(jpr, registry, work)
    subject_id, listing_id = report_and_review(jpr, members)
    correct_and_appeal(jpr, registry, members, subject_id, listing_id)
    certificates(jpr, registry, work, members)
    witnesses(jpr, registry, work, members)
    jpr("admin", "import", str(import_file(work)), "--member-credentials", str(members["platform-a"]))
    jpr("admin", "events")
    jpr("admin", "audit", "access")
    jpr("admin", "audit", "certs")
    assert jpr("admin", "export", "--format", "jsonl", "--status", "lifted", json_flag=False)
    assert jpr.ran == set(COMMANDS) - {("serve",)}, f"not run: {set(COMMANDS) - jpr.ran - {('serve',)}}"


def local_commands(jpr: Jpr, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    made = jpr("init", "--data-dir", str(fresh), "--name", "assoc-json")
    assert made["registry_name"] == "assoc-json" and len(made["oprf_public_key"]) == 64
    assert jpr("db", "upgrade", "--data-dir", str(fresh))["revision_before"] == jpr("db", "current", "--data-dir", str(fresh))["code_revision"]
    assert jpr("db", "backup", str(tmp_path / "backup.db"), "--data-dir", str(fresh))["integrity"] == "ok"
    assert jpr("audit", "verify", "--data-dir", str(fresh), "--backup", str(tmp_path / "backup.db"))["ok"] is True


def enroll_members(jpr: Jpr, registry: Registry, work: Path) -> dict[str, Path]:
    assert jpr("health", "--credentials", str(registry.data_dir / "probe.credentials.json"), "--endpoint", registry.endpoint) == {"status": "SERVING"}
    files = {name: work / f"{name}.credentials.json" for name in ("platform-a", "platform-b", "platform-c")}
    for name in ("platform-a", "platform-c"):
        jpr("admin", "members", "add", name, "--generate", "--out", str(files[name]))
    keys = jpr("member", "keygen", "platform-b", "--out-dir", str(work))
    jpr("admin", "members", "add", "platform-b", "--request", keys["request_file"], "--out", str(work / "issued.json"))
    jpr("member", "credentials", "--keys", keys["keys_file"], "--issued", str(work / "issued.json"), "--out", str(files["platform-b"]))
    assert jpr("member", "status", "--credentials", str(files["platform-b"]))["warning"] is None
    (work / "renewal").mkdir()
    renewal = jpr("member", "keygen", "platform-b", "--out-dir", str(work / "renewal"))
    jpr("admin", "members", "reissue", "platform-b", "--request", renewal["request_file"], "--out", str(work / "renewal" / "issued.json"))
    added = jpr("admin", "members", "add-key", "platform-a", "--public-key", dsse.public_key(dsse.generate_signing_key()).hex())
    jpr("admin", "members", "revoke-key", "platform-a", added["key_id"])
    jpr("admin", "members", "suspend", "platform-c", "--reason", "audit")
    jpr("admin", "members", "resume", "platform-c", "--reason", "audit done")
    jpr("admin", "members", "volume", "platform-a", "1000", "--reason", "declared")
    assert {m["name"] for m in jpr("admin", "members", "list")} == set(files)
    return files


def report_and_review(jpr: Jpr, members: dict[str, Path]) -> tuple[str, str]:
    first = jpr(*report_flags(members["platform-a"], RIC))
    jpr(*report_flags(members["platform-b"], RIC, "--phone", "13800138000"))
    rejected = jpr(*report_flags(members["platform-a"], ric_number(2)))
    withdrawn = jpr(*report_flags(members["platform-c"], ric_number(3)))
    jpr("retract", withdrawn["report_id"], "--credentials", str(members["platform-c"]), "--reason", "filed in error")
    jpr("admin", "reports", "reject", rejected["report_id"], "--reason", "no evidence")
    accepted = jpr("admin", "reports", "accept", first["report_id"])
    assert accepted["listing"]["subject_id"] == first["subject_id"]
    assert jpr("admin", "reports", "list")["items"]
    assert jpr("admin", "listings", "list")["items"]
    verdict = jpr("lookup", "--credentials", str(members["platform-b"]), "--role", "merchant", "--cn-ric", RIC)
    assert verdict["matches"][0]["matched_types"] == ["cn_ric"]
    return first["subject_id"], accepted["listing"]["listing_id"]


def correct_and_appeal(jpr: Jpr, registry: Registry, members: dict[str, Path], subject_id: str, listing_id: str) -> None:
    shown = jpr("admin", "subject", "show", subject_id)
    phone = next(i["token_prefix"] for i in shown["identifiers"] if i["type"] == "phone")
    jpr("admin", "subject", "detach", subject_id, "--token", phone, "--reason", "not theirs")
    second = next(r["report_id"] for r in shown["reports"] if r["reporter"] == "platform-b")
    # Refused here (both reports carry the ID card; an active listing has no notice window): their answers
    # are a Correction and a listing, as `detach` and `lift` print them.
    for refused in (("admin", "subject", "split", subject_id, "--report", second, "--reason", "someone else"),
                    ("admin", "listings", "object", listing_id, "--reason", "too late")):
        code, error = jpr.refused(*refused)
        assert (code, error["status"]) == (EXIT_REFUSED, "FAILED_PRECONDITION"), error
    clients = [RegistryClient(Credentials.load(path).with_endpoint(registry.endpoint)) for path in members.values()]
    try:
        burst(tuple(clients), 20)  # the flood guard's quarantine, for the review queue and a release
    finally:
        for client in clients:
            client.close()
    registry.running.flood.check()
    assert jpr("admin", "listings", "queue")["items"][0]["quarantined"]
    jpr("admin", "listings", "release", listing_id, "--reason", "checked")
    appeal = jpr("admin", "appeals", "file", listing_id, "--reason", "mistaken identity")
    jpr("admin", "appeals", "decide", appeal["appeal_id"], "--decision", "denied", "--reason", "evidence holds")
    assert jpr("admin", "appeals", "list")["items"]
    jpr("admin", "listings", "lift", listing_id, "--grounds", "correction", "--reason", "wrong person after all")


def certificates(jpr: Jpr, registry: Registry, work: Path, members: dict[str, Path]) -> None:
    jpr("admin", "admins", "add", "alice", "--out", str(work / "alice.json"))
    assert [a["name"] for a in jpr("admin", "admins", "list")] == ["admin", "alice"]
    jpr("admin", "admins", "revoke", "alice", "--reason", "left")
    jpr("admin", "probes", "add", "haproxy-1", "--out", str(work / "probe.json"))
    _, csr = pki.make_csr("hand-signed", pki.ROLE_PROBE)
    (work / "hand.pem").write_bytes(DataDir(registry.data_dir).issuer().sign(csr, "hand-signed", pki.ROLE_PROBE))
    registered = jpr("admin", "cert", "register", str(work / "hand.pem"))
    jpr("admin", "cert", "revoke", registered["certificate_sha256"], "--reason", "test over")
    (work / "server").mkdir()
    jpr("admin", "server-cert", "renew", "--out-dir", str(work / "server"))
    jpr("admin", "ca", "renew", "--out", str(work / "ca.pem"))
    jpr("member", "trust-ca", "--credentials", str(members["platform-b"]), "--ca", str(work / "ca.pem"))


def witnesses(jpr: Jpr, registry: Registry, work: Path, members: dict[str, Path]) -> None:
    made = jpr("witness", "keygen", "witness.json-test", "--out", str(work / "witness.key"))
    assert jpr("admin", "witnesses", "add", made["verifier_key"], "--reason", "trial")["name"] == "witness.json-test"
    cosigned = jpr("witness", "run", "--credentials", str(members["platform-a"]), "--endpoint", registry.endpoint,
                   "--key", made["key_file"], "--state", str(work / "witness.state.json"), "--once")
    assert cosigned["size"] > 0
    assert [w["name"] for w in jpr("admin", "witnesses", "list")] == ["witness.json-test"]
    assert jpr("admin", "witnesses", "remove", "witness.json-test", "--reason", "trial over")["removed_at"]


def import_file(work: Path) -> Path:
    path = work / "list.csv"
    path.write_text("role,cn_ric,phone,display_name,category,severity,reason,banned_by,start_date,end_date\n"
                    f"merchant,{ric_number(9)},,张*明,fraud,severe,refund fraud,Platform A,2024-03-01,2099-02-28\n", encoding="utf-8")
    return path


def test_a_usage_error_under_json_is_a_json_object_and_exit_2(jpr: Jpr) -> None:
    code, error = jpr.refused("admin", "reports", "accept")
    assert (code, error["status"]) == (EXIT_USAGE, "INVALID_ARGUMENT") and "report_id" in error["message"]
    code, error = jpr.refused("lookup", "--role", "streamer")
    assert code == EXIT_USAGE and "--role" in error["message"]


def test_a_refusal_by_the_registry_is_its_grpc_status_and_exit_1(jpr: Jpr) -> None:
    code, error = jpr.refused("admin", "reports", "accept", "00000000-0000-0000-0000-000000000000")
    assert (code, error["status"]) == (EXIT_REFUSED, "NOT_FOUND") and not error["message"].startswith("NOT_FOUND")
    assert re.fullmatch(r"[0-9a-f]{16}", error["request_id"]), error  # the id of the call's record in the registry's log


def test_an_unreachable_registry_is_unavailable_and_exit_3(jpr: Jpr) -> None:
    code, error = jpr.refused("admin", "reports", "list", "--endpoint", f"127.0.0.1:{closed_port()}")
    assert (code, error["status"]) == (EXIT_UNREACHABLE, "UNAVAILABLE") and "request_id" not in error, error


def test_a_failure_without_json_stays_one_line(jpr: Jpr) -> None:
    code, out, err = jpr.run("admin", "reports", "accept", "00000000-0000-0000-0000-000000000000", json_flag=False)
    assert code == EXIT_REFUSED and err.startswith("jpr: NOT_FOUND: ") and err.count("\n") == 1
    assert re.search(r" \(request id [0-9a-f]{16}\)\n$", err), err
