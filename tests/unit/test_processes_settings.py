"""`--processes`, `JPR_PROCESSES`, `processes` in registry.toml: how many processes `jpr serve` starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from registry.cli.main import main
from registry.settings import SettingsError, load_settings, metrics_address
from tests.unit.test_docker_files import services


def test_processes_default_to_one_per_core_this_process_may_run_on() -> None:
    settings = load_settings({"data_dir": Path("absent")}, environ={})
    assert settings.processes == 0
    assert settings.effective_processes == min(len(os.sched_getaffinity(0)), 64)


def test_processes_come_from_the_flag_the_variable_or_registry_toml(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text("processes = 3\n")
    assert load_settings({"data_dir": tmp_path}, environ={}).effective_processes == 3
    assert load_settings({"data_dir": tmp_path}, environ={"JPR_PROCESSES": "2"}).effective_processes == 2
    assert load_settings({"data_dir": tmp_path, "processes": 1}, environ={"JPR_PROCESSES": "2"}).effective_processes == 1


def test_more_than_64_processes_are_refused_in_the_words_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), "--processes", "65"]) == 1
    assert capsys.readouterr().err == "jpr: --processes=65 is out of range: processes must be 0 to 64\n"
    with pytest.raises(SettingsError, match=r"^JPR_PROCESSES='two' is not an integer$"):
        load_settings({"data_dir": tmp_path}, environ={"JPR_PROCESSES": "two"})


def test_each_process_serves_its_metrics_at_the_port_after_the_one_before() -> None:
    assert [metrics_address("127.0.0.1:9464", i) for i in range(3)] == ["127.0.0.1:9464", "127.0.0.1:9465", "127.0.0.1:9466"]
    assert [metrics_address("[::]:0", i) for i in range(2)] == ["[::]:0", "[::]:0"]  # a free port each


def test_metrics_ports_of_several_processes_may_not_reach_the_grpc_port() -> None:
    flags = {"data_dir": Path("absent"), "listen": "127.0.0.1:50051", "metrics_listen": "127.0.0.1:50049", "processes": 3}
    with pytest.raises(SettingsError) as refused:
        load_settings(flags, environ={})
    assert str(refused.value).endswith("; with 3 processes, ports PORT to PORT+2 serve metrics, one a process")
    assert load_settings({**flags, "processes": 2}, environ={}).metrics_listen == "127.0.0.1:50049"


def test_metrics_ports_of_several_processes_may_not_pass_65535() -> None:
    with pytest.raises(SettingsError, match="with 2 processes"):
        load_settings({"data_dir": Path("absent"), "metrics_listen": "127.0.0.1:65535", "processes": 2}, environ={})


@pytest.mark.parametrize("compose", ["compose.yaml", "compose.sqlite.yaml"])
def test_each_compose_service_serving_starts_as_many_processes_as_its_cpus_limit(compose: str) -> None:
    """In a container `os.sched_getaffinity` sees the host's cores, not the quota: the files say it."""
    serving = {name: service for name, service in services(compose).items() if service.get("command") == ["serve"]}
    assert serving
    for name, service in serving.items():
        assert service["environment"]["JPR_PROCESSES"] == service["deploy"]["resources"]["limits"]["cpus"], name
