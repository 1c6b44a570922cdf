"""Private files are private: the data directory, the database and its -wal/-shm files, backups and
every file holding a key are owner-only from the moment they exist, whatever the umask
(docs/security.md, duty 1)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jpr_client.credentials import Credentials
from registry.cli.main import main
from registry.datadir import ADMIN_CREDENTIALS, REPLICA_FILES, DataDir
from registry.server.app import start
from registry.settings import load_settings
from tests.conftest import AdminClient

PUBLIC = {"registry.toml", "ca.pem", "server.pem", "initial-certificates.pem"}  # configuration and certificates, nothing secret


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual umask (0022): anything not created owner-only comes out readable by everyone."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def readable_by_others(*paths: Path) -> dict[str, str]:
    """Each path whose group or others may read, write or enter it, with its mode."""
    return {str(path): oct(path.stat().st_mode & 0o777) for path in paths if path.stat().st_mode & 0o077}


def jpr(*argv: str) -> None:
    assert main([*argv]) == 0, argv


@pytest.fixture
def served(tmp_path: Path, permissive_umask: None) -> Iterator[tuple[Path, str]]:
    """A data directory made by `jpr init` under the permissive umask, and the endpoint serving it."""
    data_dir = tmp_path / "jpr-data"
    jpr("init", "--data-dir", str(data_dir), "--name", "jpr-modes-test")
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0"}, environ={}))
    try:
        yield data_dir, f"127.0.0.1:{running.port}"
    finally:
        running.stop(grace=None)


def test_a_serving_registry_its_database_files_and_backup_are_owner_only(served: tuple[Path, str], tmp_path: Path) -> None:
    (data_dir, endpoint), backup = served, tmp_path / "backup.db"
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(endpoint), DataDir(data_dir).issuer())
    try:
        admin.add_member("platform-a")  # a write: the -wal and -shm files exist while the registry serves
    finally:
        admin.close()
    jpr("db", "backup", str(backup), "--data-dir", str(data_dir))
    files = [path for path in data_dir.iterdir() if path.name not in PUBLIC]
    assert {path.name for path in files} >= {"registry.db", "registry.db-wal", "registry.db-shm", "oprf.key", "issuer"}
    assert readable_by_others(data_dir, *files, backup) == {}


@pytest.mark.usefixtures("permissive_umask")
def test_init_makes_an_existing_empty_directory_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "prepared"
    data_dir.mkdir(mode=0o755)
    jpr("init", "--data-dir", str(data_dir), "--no-database")
    assert readable_by_others(data_dir) == {}


def test_key_and_credentials_files_the_cli_writes_are_owner_only(served: tuple[Path, str], tmp_path: Path) -> None:
    (data_dir, endpoint), work = served, tmp_path / "work"
    admin = ("--credentials", str(data_dir / ADMIN_CREDENTIALS), "--endpoint", endpoint, "--issuer", str(data_dir / "issuer"))
    work.mkdir()
    jpr("admin", "members", "add", "platform-a", "--generate", "--out", str(work / "platform-a.credentials.json"), *admin)
    jpr("member", "keygen", "platform-b", "--out-dir", str(work))
    jpr("admin", "members", "add", "platform-b", "--request", str(work / "platform-b.request.json"), "--out", str(work / "issued.json"), *admin)
    jpr("member", "credentials", "--keys", str(work / "platform-b.keys.json"), "--issued", str(work / "issued.json"),
        "--out", str(work / "platform-b.credentials.json"))
    private = ("platform-a.credentials.json", "platform-b.keys.json", "issued.json", "platform-b.credentials.json")
    assert readable_by_others(*(work / name for name in private)) == {}


def test_init_owner_must_be_numeric_and_the_error_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["init", "--data-dir", str(tmp_path / "d"), "--owner", "jpr"])
    assert "argument --owner: 'jpr' is not UID or UID:GID in numbers" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_init_owner_hands_what_a_replica_reads_to_that_user_and_keeps_the_ca_key(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("jpr init --owner gives files to another user: needs root")
    data_dir = tmp_path / "jpr-data"
    jpr("init", "--data-dir", str(data_dir), "--owner", "10001:10002")
    owned = {path.name for path in [data_dir, *data_dir.iterdir()] if (path.stat().st_uid, path.stat().st_gid) == (10001, 10002)}
    assert owned == {"jpr-data", "registry.db", *REPLICA_FILES}  # the SQLite database too; never ca.key nor admin's credentials
    assert readable_by_others(*(path for path in data_dir.iterdir() if path.name not in PUBLIC)) == {}
