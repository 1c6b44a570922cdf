"""`jpr` errors in the words the user typed, and progress on long admin work only for a person at a terminal."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from jpr_client import RegistryClient, RetryConfig, RPCError
from registry.cli.main import main
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.server.app import start
from registry.settings import load_settings
from tests.conftest import Registry
from tests.integration.test_cli import REPORT_FLAGS, RIC, Jpr
from tests.integration.test_import import HEADER, row, valid_ric

JPR = str(Path(sys.executable).with_name("jpr"))
UUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def jpr(registry: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Jpr:
    monkeypatch.setenv("JPR_ISSUER", str(registry.data_dir / "issuer"))
    return Jpr(registry, capsys, tmp_path)


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Stderr of a `jpr ARGV` that argparse refuses (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


def run(*argv: str, terminal: bool = False, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`jpr ARGV` in its own process; its stderr a terminal (a pty) when `terminal`, else a pipe."""
    master, slave = pty.openpty() if terminal else (-1, -1)
    process = subprocess.Popen([JPR, *argv], stdout=subprocess.PIPE, stderr=slave if terminal else subprocess.PIPE,
                               env={**os.environ, **(env or {})}, text=True)
    if terminal:
        os.close(slave)
    out, err = process.communicate(timeout=120)
    if terminal:
        err = _drain(master)
    return process.returncode, out, err


def _drain(master: int) -> str:
    chunks = []
    try:
        while chunk := os.read(master, 4096):
            chunks.append(chunk)
    except OSError:  # EIO: the other end has closed
        pass
    os.close(master)
    return b"".join(chunks).decode()


def test_an_unknown_flag_shows_the_subcommands_usage_not_the_top_levels(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "admin", "reports", "list", "--bogus", "--credentials", "unused.json")
    assert err.startswith("usage: jpr admin reports list ") and "jpr admin reports list: error: unrecognized arguments: --bogus" in err


def test_an_unknown_flag_before_the_action_shows_its_groups_usage(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "db", "--bogus", "current")
    assert err.startswith("usage: jpr db ") and "unrecognized arguments: --bogus" in err


def test_an_evidence_digest_that_is_not_hex_names_evidence_sha256(capsys: pytest.CaptureFixture[str]) -> None:
    flags = [f for f in REPORT_FLAGS if f != "00" * 32]
    flags[flags.index("--evidence-sha256") + 1:flags.index("--evidence-sha256") + 1] = ["zz" * 32]
    err = usage_error(capsys, "report", "--credentials", "unused.json", *flags)
    assert "argument --evidence-sha256: must be 64 hex digits (a SHA-256 digest)" in err and "fromhex" not in err


def test_an_evidence_digest_of_the_wrong_length_names_evidence_sha256(capsys: pytest.CaptureFixture[str]) -> None:
    flags = [("abcd" if f == "00" * 32 else f) for f in REPORT_FLAGS]
    assert "argument --evidence-sha256: must be 64 hex digits" in usage_error(capsys, "report", "--credentials", "unused.json", *flags)


def test_an_occurred_at_that_is_not_a_date_names_occurred_at(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "report", "--credentials", "unused.json", *REPORT_FLAGS, "--occurred-at", "last tuesday")
    assert "argument --occurred-at: 'last tuesday' is not an ISO 8601 date or time" in err


def test_a_report_id_that_is_not_a_uuid_names_report_id(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "report", "--credentials", "unused.json", *REPORT_FLAGS, "--report-id", "report-1")
    assert "argument --report-id: 'report-1' is not a UUID" in err


def test_a_token_that_is_not_a_hex_prefix_names_token_not_token_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "admin", "subject", "detach", "S1", "--token", "xyz", "--reason", "wrong", "--credentials", "unused.json")
    assert "argument --token: must be 16 to 128 hex digits" in err and "token_prefix" not in err


def test_a_public_key_that_is_not_32_bytes_of_hex_names_public_key(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "admin", "members", "add-key", "platform-a", "--public-key", "abcd", "--credentials", "unused.json")
    assert "argument --public-key: must be 64 hex digits (a raw Ed25519 public key)" in err


def test_a_page_size_of_zero_names_page_size(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "admin", "listings", "list", "--page-size", "0", "--credentials", "unused.json")
    assert "argument --page-size: '0' is not a whole number of 1 or more" in err


def test_a_workers_variable_that_is_not_a_number_is_named_jpr_workers(tmp_path: Path) -> None:
    code, _, err = run("serve", "--data-dir", str(tmp_path), env={"JPR_WORKERS": "four"})
    assert code == 1 and err == "jpr: JPR_WORKERS='four' is not an integer\n"


def test_serving_a_missing_data_directory_says_how_to_create_one_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "MISSING"
    code, _, err = run("serve", "--data-dir", str(missing))
    assert code == 1 and err == f"jpr: data directory {missing} does not exist: `jpr init --data-dir {missing}` creates one\n"


def test_backing_up_a_missing_data_directory_says_how_to_create_one_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "MISSING"
    code, _, err = run("db", "backup", "--data-dir", str(missing), str(tmp_path / "copy.db"))
    assert code == 1 and err == f"jpr: data directory {missing} does not exist: `jpr init --data-dir {missing}` creates one\n"
    assert not (tmp_path / "copy.db").exists()


def test_backing_up_a_data_directory_without_its_database_says_how_to_make_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--data-dir", str(tmp_path / "keys-only"), "--no-database"]) == 0
    capsys.readouterr()
    assert main(["db", "backup", "--data-dir", str(tmp_path / "keys-only"), str(tmp_path / "copy.db")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("jpr: no registry database at ") and "`jpr db upgrade` creates it" in err


def test_an_unreachable_registry_asks_whether_it_is_running(jpr: Jpr, registry: Registry) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{unused.getsockname()[1]}"
    credentials = str(registry.data_dir / ADMIN_CREDENTIALS)
    err = jpr("admin", "members", "list", "--credentials", credentials, "--endpoint", endpoint, ok=False)
    assert err == f"jpr: UNAVAILABLE: cannot reach the registry at {endpoint} (Connection refused): is the registry running at {endpoint}?\n"


def test_an_early_credit_repair_names_the_grounds_as_the_flag_spells_them(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    listing = json.loads(jpr.admin("admin", "reports", "accept", receipt["report_id"], "--json"))["listing"]
    err = jpr.admin("admin", "listings", "lift", listing["listing_id"], "--grounds", "credit-repair", "--reason", "repaid", ok=False)
    assert "may be lifted with --grounds credit-repair from" in err and "wrong is lifted with --grounds correction" in err
    assert "CREDIT_REPAIR" not in err and "ADMIN_CORRECTION" not in err


def test_a_term_the_registry_refuses_names_term_days(jpr: Jpr, tmp_path: Path) -> None:
    jpr.admin("admin", "members", "add", "platform-a", "--generate", "--out", str(tmp_path / "platform-a.credentials.json"))
    receipt = json.loads(jpr.member("report", "platform-a", *REPORT_FLAGS, "--json"))
    err = jpr.admin("admin", "reports", "accept", receipt["report_id"], "--term-days", "999999", ok=False)
    assert "INVALID_ARGUMENT: --term-days 999999 is out of range" in err and "term_days" not in err


@pytest.fixture
def other_registry(tmp_path: Path) -> Iterator[str]:
    """The endpoint of a second registry, with its own CA."""
    data_dir = tmp_path / "other"
    DataDir(data_dir).initialize(registry_name="jpr-other", admin_name="admin", endpoint="127.0.0.1:50051")
    main(["db", "upgrade", "--data-dir", str(data_dir)])
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0"}, environ={}))
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        running.stop(grace=None)


@pytest.mark.parametrize("command", [["admin", "members", "list"], ["lookup", "--role", "merchant", "--cn-ric", RIC]])
def test_credentials_of_another_registry_are_said_to_belong_to_another_registry(
    jpr: Jpr, registry: Registry, other_registry: str, command: list[str]
) -> None:
    err = jpr(*command, "--credentials", str(registry.data_dir / ADMIN_CREDENTIALS), "--endpoint", other_registry, ok=False)
    assert err.startswith(f"jpr: UNAVAILABLE: the registry at {other_registry} has a certificate that the CA in these credentials did not sign")
    assert "the credentials belong to another registry" in err


# Retries this slow would take seconds: connecting fails before any of them.
SLOW_RETRIES = RetryConfig(attempts=5, initial_backoff=5.0, max_backoff=5.0)


def test_connecting_with_credentials_of_another_registry_fails_at_once_without_retries(
    registry: Registry, other_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with RegistryClient(registry.admin_credentials().with_endpoint(other_registry), retry=SLOW_RETRIES) as client:
        with pytest.raises(RPCError) as refused:
            client.connect()
    assert time.monotonic() - started < 3.0
    assert refused.value.status is grpc.StatusCode.UNAVAILABLE and "belong to another registry" in refused.value.message


def test_watching_changes_with_credentials_of_another_registry_raises_instead_of_reopening_forever(
    registry: Registry, other_registry: str, tmp_path: Path
) -> None:
    raised: list[BaseException] = []

    def watch() -> None:
        with RegistryClient(registry.admin_credentials().with_endpoint(other_registry)) as client:
            try:
                next(iter(client.watch_changes(tmp_path / "cursor")))
            except RPCError as error:
                raised.append(error)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    watcher.join(timeout=20)
    assert raised and "belong to another registry" in str(raised[0]), "the watch kept reopening"


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A registry data directory with its SQLite database."""
    assert main(["init", "--data-dir", str(tmp_path / "jpr-data")]) == 0
    capsys.readouterr()
    return tmp_path / "jpr-data"


def test_db_backup_shows_its_progress_when_stderr_is_a_terminal(data_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("db", "backup", "--data-dir", str(data_dir), str(tmp_path / "copy.db"), terminal=True)
    assert code == 0 and "integrity ok" in out
    assert err.startswith("\rbackup: [##############################] ") and " pages, " in err and err.endswith("\r\n")


def test_db_backup_is_quiet_when_stderr_is_a_pipe(data_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("db", "backup", "--data-dir", str(data_dir), str(tmp_path / "copy.db"))
    assert (code, err) == (0, "") and "integrity ok" in out


@pytest.fixture
def import_command(jpr: Jpr, registry: Registry, tmp_path: Path) -> list[str]:
    """`jpr admin import` of a two-row list, with the association's member credentials."""
    member = tmp_path / "association.credentials.json"
    jpr.admin("admin", "members", "add", "association", "--generate", "--out", str(member))
    listing = tmp_path / "list.csv"
    listing.write_text("\n".join([HEADER, row(valid_ric(1)), row(valid_ric(2))]) + "\n", encoding="utf-8")
    return ["admin", "import", str(listing), "--member-credentials", str(member),
            "--credentials", str(registry.data_dir / ADMIN_CREDENTIALS), "--endpoint", registry.endpoint]


def test_import_shows_its_progress_when_stderr_is_a_terminal(import_command: list[str]) -> None:
    code, out, err = run(*import_command, terminal=True)
    assert code == 0 and "imported 2" in out
    assert "\rimport: [##############################] 2/2 rows, " in err and err.endswith("\r\n")


def test_import_is_quiet_under_json_even_on_a_terminal(import_command: list[str]) -> None:
    code, out, err = run(*import_command, "--json", terminal=True)
    assert (code, err) == (0, "") and json.loads(out)["imported"] == 2
