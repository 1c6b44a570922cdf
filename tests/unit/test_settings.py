"""Settings: flag over JPR_* variable over registry.toml over default, each within its allowed range."""

from __future__ import annotations

import logging
import re
from dataclasses import fields
from pathlib import Path

import pytest

from registry.cli.main import main
from registry.domain.terms import MAX_TERM_DAYS
from registry.settings import ALLOWED, OTHER_VARIABLES, Settings, SettingsError, load_settings, variable


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


def test_every_setting_has_its_allowed_values_listed_in_field_order() -> None:
    assert list(ALLOWED) == [f.name for f in fields(Settings)]


def test_every_default_is_allowed() -> None:
    defaults = Settings()
    refused = [name for name, rule in ALLOWED.items() if not rule.allows(getattr(defaults, name), defaults)]
    assert refused == []


def test_the_longest_term_is_the_one_an_admin_may_give_per_listing() -> None:
    environ = {"JPR_SERIOUS_TERM_DAYS": str(MAX_TERM_DAYS), "JPR_SEVERE_TERM_DAYS": str(MAX_TERM_DAYS + 1)}
    with pytest.raises(SettingsError, match=f"JPR_SEVERE_TERM_DAYS={MAX_TERM_DAYS + 1} is out of range"):
        load_settings({"data_dir": Path("absent")}, environ=environ)


# One or more values outside each range, by the variable that gives it.
OUT_OF_RANGE = [
    ("JPR_SERIOUS_TERM_DAYS", "0"),
    ("JPR_SEVERE_TERM_DAYS", "-1"),
    ("JPR_SEVERE_TERM_DAYS", str(10**7)),  # its end would overflow datetime
    ("JPR_NOTICE_DAYS", "-1"),
    ("JPR_NOTICE_DAYS", "366"),
    ("JPR_EARLY_REMOVAL_AFTER_DAYS", "-1"),
    ("JPR_EARLY_REMOVAL_AFTER_DAYS", "36501"),
    ("JPR_RETENTION_DAYS", "0"),
    ("JPR_RETENTION_DAYS", "36501"),
    ("JPR_WORKERS", "0"),
    ("JPR_WORKERS", "257"),
    ("JPR_TOKENIZE_PER_SECOND", "-1"),
    ("JPR_LOOKUPS_PER_SECOND", "-0.5"),
    ("JPR_TOKENIZE_BURST", "0"),
    ("JPR_LOOKUPS_BURST", "-5"),
    ("JPR_MAX_CONCURRENT_CALLS", "0"),
    ("JPR_MAX_STREAMS", "0"),
    ("JPR_MAX_STREAMS_PER_CALLER", "0"),
    ("JPR_MAX_STREAMS_PER_CALLER", "17"),  # more than max_streams (16)
    ("JPR_KEEPALIVE_SECONDS", "0"),
    ("JPR_KEEPALIVE_SECONDS", "86401"),
    ("JPR_MIN_CLIENT_PING_SECONDS", "0"),
    ("JPR_MAX_CLOCK_SKEW_SECONDS", "-1"),
    ("JPR_MAX_CLOCK_SKEW_SECONDS", "86401"),
    ("JPR_EXPIRY_INTERVAL_SECONDS", "0"),
    ("JPR_FOLLOW_INTERVAL_SECONDS", "0"),
    ("JPR_FOLLOW_INTERVAL_SECONDS", "30"),  # as long as max_lag_seconds: the view would go stale between polls
    ("JPR_MAX_LAG_SECONDS", "0"),
    ("JPR_MAX_LAG_SECONDS", "-1"),
]


@pytest.mark.parametrize(("variable", "value"), OUT_OF_RANGE)
def test_a_value_out_of_range_is_refused_naming_the_variable_the_value_and_the_range(variable: str, value: str) -> None:
    name = variable.removeprefix("JPR_").lower()
    with pytest.raises(SettingsError) as refused:
        load_settings({"data_dir": Path("absent")}, environ={variable: value})
    assert str(refused.value) == f"{variable}={value} is out of range: {name} must be {ALLOWED[name].describe(Settings())}"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JPR_SERIOUS_TERM_DAYS": "0"}, "JPR_SERIOUS_TERM_DAYS=0 is out of range: serious_term_days must be 1 to 36500 days"),
        ({"JPR_NOTICE_DAYS": "400"}, "JPR_NOTICE_DAYS=400 is out of range: notice_days must be 0 to 365 days"),
        ({"JPR_TOKENIZE_BURST": "0"}, "JPR_TOKENIZE_BURST=0 is out of range: tokenize_burst must be at least 1"),
        ({"JPR_MAX_LAG_SECONDS": "0"}, "JPR_MAX_LAG_SECONDS=0 is out of range: max_lag_seconds must be more than 0 and at most 86400 seconds"),
        ({"JPR_MAX_STREAMS": "2"}, "the default max_streams_per_caller=4 is out of range: max_streams_per_caller must be 1 to max_streams (2)"),
        ({"JPR_MAX_LAG_SECONDS": "0.1"}, "the default follow_interval_seconds=0.2 is out of range: "
                                          "follow_interval_seconds must be more than 0 and less than max_lag_seconds (0.1) seconds"),
        ({"JPR_LOG_LEVEL": "info"}, "JPR_LOG_LEVEL=info is not allowed: log_level must be one of DEBUG, INFO, WARNING, ERROR"),
        ({"JPR_LOG_FORMAT": "JSON"}, "JPR_LOG_FORMAT=JSON is not allowed: log_format must be one of text, json"),
        ({"JPR_LISTEN": "localhost"}, "JPR_LISTEN=localhost is not allowed: listen must be HOST:PORT with a port 0 to 65535"),
        ({"JPR_LISTEN": "127.0.0.1:65536"}, "JPR_LISTEN=127.0.0.1:65536 is not allowed: listen must be HOST:PORT with a port 0 to 65535"),
        ({"JPR_LISTEN": ":50051"}, "JPR_LISTEN=:50051 is not allowed: listen must be HOST:PORT with a port 0 to 65535"),
        ({"JPR_WORKERS": "abc"}, "JPR_WORKERS='abc' is not an integer"),
        ({"JPR_WORKERS": "2.5"}, "JPR_WORKERS='2.5' is not an integer"),
        ({"JPR_WORKERS": ""}, "JPR_WORKERS='' is not an integer"),
        ({"JPR_MAX_LAG_SECONDS": "abc"}, "JPR_MAX_LAG_SECONDS='abc' is not a number"),
        ({"JPR_KEEPALIVE_SECONDS": "inf"}, "JPR_KEEPALIVE_SECONDS='inf' is not a number"),
        ({"JPR_LOOKUPS_PER_SECOND": "nan"}, "JPR_LOOKUPS_PER_SECOND='nan' is not a number"),
    ],
)
def test_a_refused_variable_is_named_as_the_user_typed_it(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"data_dir": Path("absent")}, environ=environ)
    assert str(refused.value) == message


def test_a_refused_flag_is_named_as_a_flag() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"data_dir": Path("absent"), "max_streams_per_caller": 0}, environ={"JPR_MAX_STREAMS_PER_CALLER": "2"})
    assert str(refused.value) == "--max-streams-per-caller=0 is out of range: max_streams_per_caller must be 1 to max_streams (16)"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("workers = 0", "workers=0 is out of range: workers must be 1 to 256"),
        ("workers = 2.5", "workers=2.5 is not an integer"),
        ("workers = true", "workers=True is not an integer"),
        ("workers = 'abc'", "workers='abc' is not an integer"),
        ("retention_days = 0", "retention_days=0 is out of range: retention_days must be 1 to 36500 days"),
    ],
)
def test_a_refused_file_setting_is_named_by_file_and_key(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "registry.toml").write_text(line + "\n")
    with pytest.raises(SettingsError) as refused:
        load_settings({"data_dir": tmp_path}, environ={})
    assert str(refused.value) == f"{tmp_path / 'registry.toml'}: {message}"


def test_a_misspelt_file_setting_is_refused_with_the_closest_known_one(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text("wrokers = 2\n")
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) wrokers \(did you mean workers\?\)"):
        load_settings({"data_dir": tmp_path}, environ={})


def test_an_unknown_variable_is_warned_about_with_the_closest_known_one_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jpr.settings"):
        settings = load_settings({"data_dir": Path("absent")}, environ={"JPR_WORKES": "8", "JPR_ZZZ": "1", "OTHER": "1"})
    assert settings.workers == Settings.workers
    assert [r.getMessage() for r in caplog.records] == [
        "JPR_WORKES is not a JPR setting and is ignored (did you mean JPR_WORKERS?)",
        "JPR_ZZZ is not a JPR setting and is ignored",
    ]


def test_variables_read_outside_the_settings_are_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    environ = {name: "x" for name in OTHER_VARIABLES} | {"JPR_DATA_DIR": "absent", "JPR_WORKERS": "8"}
    with caplog.at_level(logging.DEBUG, logger="jpr.settings"):
        load_settings({}, environ=environ)
    assert caplog.records == []


def test_every_jpr_variable_the_code_reads_is_a_setting_or_listed_as_read_elsewhere() -> None:
    root = Path(__file__).parents[2]
    files = [p for top in ("registry", "clients", "tests", "bench", "examples", "docker") for p in (root / top).rglob("*")
             if p.is_file() and p.suffix in (".py", ".yaml", "") and p != Path(__file__)]
    named = {match for p in files for match in re.findall(r"\bJPR_[A-Z][A-Z0-9_]*", p.read_text(errors="replace"))}
    assert named and named <= {variable(f.name) for f in fields(Settings)} | set(OTHER_VARIABLES)


@pytest.mark.parametrize("command", ["serve", "init"])
def test_jpr_refuses_a_bad_variable_in_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JPR_WORKERS", "abc")
    assert main([command, "--data-dir", str(tmp_path / "jpr-data")]) == 1
    assert capsys.readouterr().err == "jpr: JPR_WORKERS='abc' is not an integer\n"
    assert not (tmp_path / "jpr-data").exists()


def test_jpr_serve_refuses_a_bad_flag_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), "--workers", "0"]) == 1
    assert capsys.readouterr().err == "jpr: --workers=0 is out of range: workers must be 1 to 256\n"
    assert main(["serve", "--data-dir", str(tmp_path), "--log-format", "xml"]) == 1
    assert capsys.readouterr().err == "jpr: --log-format=xml is not allowed: log_format must be one of text, json\n"


def test_metrics_are_off_by_default_and_served_at_the_address_given() -> None:
    assert load_settings({"data_dir": Path("absent")}, environ={}).metrics_listen == ""
    given = load_settings({"data_dir": Path("absent")}, environ={"JPR_METRICS_LISTEN": "0.0.0.0:9464"})
    assert given.metrics_listen == "0.0.0.0:9464"
    both_free = load_settings({"data_dir": Path("absent"), "listen": "127.0.0.1:0", "metrics_listen": "127.0.0.1:0"}, environ={})
    assert both_free.metrics_listen == "127.0.0.1:0"  # port 0 twice: two free ports
    elsewhere = load_settings({"data_dir": Path("absent"), "listen": "10.0.0.5:50051", "metrics_listen": "127.0.0.1:50051"}, environ={})
    assert elsewhere.metrics_listen == "127.0.0.1:50051"


@pytest.mark.parametrize(
    ("listen", "metrics_listen"),
    [("127.0.0.1:50051", "127.0.0.1:50051"), ("0.0.0.0:50051", "127.0.0.1:50051"), ("127.0.0.1:50051", "[::]:50051")],
)
def test_metrics_are_refused_on_the_grpc_port(listen: str, metrics_listen: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"data_dir": Path("absent"), "listen": listen, "metrics_listen": metrics_listen}, environ={})
    assert str(refused.value) == (
        f"--metrics-listen={metrics_listen} is not allowed: metrics_listen must be empty (no metrics) or "
        f"HOST:PORT with a port 0 to 65535, not the gRPC address listen ({listen})"
    )


def test_a_metrics_address_without_a_port_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^JPR_METRICS_LISTEN=localhost is not allowed: metrics_listen must be empty"):
        load_settings({"data_dir": Path("absent")}, environ={"JPR_METRICS_LISTEN": "localhost"})
