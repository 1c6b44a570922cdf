"""Settings: flag over JPR_* variable over registry.toml over default."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.settings import Settings, load_settings


def test_defaults_serve_the_local_sqlite_registry(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path}, environ={})
    assert settings.listen == "127.0.0.1:50051"
    assert settings.effective_database_url == f"sqlite+pysqlite:///{tmp_path.resolve() / 'registry.db'}"
    assert (settings.serious_term_days, settings.severe_term_days) == (1095, 1825)


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text('registry_name = "from-file"\nlisten = "127.0.0.1:1"\nworkers = 2\n')
    environ = {"JPR_LISTEN": "127.0.0.1:2", "JPR_WORKERS": "3", "JPR_DATA_DIR": str(tmp_path)}
    assert load_settings({}, environ=environ) == Settings(data_dir=tmp_path, listen="127.0.0.1:2", workers=3, registry_name="from-file")
    assert load_settings({"listen": "127.0.0.1:9"}, environ=environ).listen == "127.0.0.1:9"


def test_environment_names_the_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert load_settings({"data_dir": tmp_path}, environ={"JPR_DATABASE_URL": url}).effective_database_url == url


def test_unknown_setting_in_the_file_is_an_error_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text("lisen = '0.0.0.0:1'\n")
    with pytest.raises(ValueError, match="unknown setting.*lisen"):
        load_settings({"data_dir": tmp_path}, environ={})


def test_database_password_comes_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("s3cr@t/pw\n")
    environ = {"JPR_DATABASE_URL": "postgresql+psycopg://jpr@db:5432/jpr", "JPR_DATABASE_PASSWORD_FILE": str(secret)}
    url = load_settings({"data_dir": tmp_path}, environ=environ).effective_database_url
    from sqlalchemy import make_url

    assert make_url(url).password == "s3cr@t/pw" and make_url(url).host == "db"
