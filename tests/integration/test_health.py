"""Health tells the truth: List answers, and NOT_SERVING while lookups cannot be answered."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import make_url

from jpr_client import Credentials, RegistryClient, RPCError, Verdict
from jpr_client.client import secure_channel
from registry.datadir import DataDir, ADMIN_CREDENTIALS, PROBE_CREDENTIALS
from registry.server.app import RunningRegistry
from registry.server.health import NOT_SERVING, SERVING, Health, LookupHealth
from tests.backends import _admin_dsn
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import RIC, applicant
from tests.integration.test_streams import new_data_dir, serving

SERVICES = ("", "jpr.v1.Registry", "jpr.v1.Admin")


def statuses(channel: grpc.Channel) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(channel)
    return {name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status for name in SERVICES}


def test_health_list_names_every_reported_service_with_its_status_for_every_role_allowed_health(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    probe = Credentials.load(registry.data_dir / PROBE_CREDENTIALS).with_endpoint(registry.endpoint)
    for credentials in (probe, registry.admin_credentials(), member("platform-a")):
        with secure_channel(credentials) as channel:
            listed = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
        assert {name: answer.status for name, answer in listed.statuses.items()} == dict.fromkeys(SERVICES, SERVING)


def test_lookup_health_switches_only_the_overall_and_registry_services_and_only_on_a_change() -> None:
    servicer = Health(("jpr.v1.Registry", "jpr.v1.Admin"))
    answerable = [True]
    monitor = LookupHealth(servicer, ("", "jpr.v1.Registry"), lambda: answerable[0], every=3600)
    try:
        def now() -> dict[str, int]:
            return {name: servicer.Check(health_pb2.HealthCheckRequest(service=name), None).status for name in SERVICES}

        monitor.check()
        assert now() == dict.fromkeys(SERVICES, SERVING)
        answerable[0] = False
        monitor.check()
        assert now() == {"": NOT_SERVING, "jpr.v1.Registry": NOT_SERVING, "jpr.v1.Admin": SERVING}
        answerable[0] = True
        monitor.check()
        assert now() == dict.fromkeys(SERVICES, SERVING)
        servicer.enter_graceful_shutdown()
        monitor.check()  # shutting down: nothing turns SERVING again
        assert now() == dict.fromkeys(SERVICES, NOT_SERVING)
    finally:
        monitor.close()


@contextmanager
def login_role() -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A PostgreSQL role of its own, and a switch that lets it log in or shuts it out (its sessions terminated)."""
    role = f"jpr_health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')

        def allow(login: bool) -> None:
            admin.execute(f'ALTER ROLE "{role}" {"LOGIN" if login else "NOLOGIN"}')
            if not login:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))

        try:
            yield role, allow
        finally:
            allow(False)
            admin.execute(f'DROP ROLE "{role}"')


@contextmanager
def reachable_on_demand(
    tmp_path: Path, database_url: str, **settings: object
) -> Iterator[tuple[RunningRegistry, Callable[[bool], None], AdminClient, grpc.Channel]]:
    """A registry (max_lag 1 s) on a PostgreSQL role that `allow(False)` shuts out, with an admin client and a probe channel."""
    data_dir = new_data_dir(tmp_path)
    with login_role() as (role, allow):
        url = make_url(database_url).set(username=role).render_as_string(hide_password=False)
        with serving(data_dir, url, max_lag_seconds=1, follow_interval_seconds=0.1, **settings) as running:
            endpoint = f"127.0.0.1:{running.port}"
            admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(endpoint), DataDir(data_dir).issuer())
            probe = secure_channel(Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(endpoint))
            try:
                yield running, allow, admin, probe
            finally:
                allow(True)
                probe.close()
                admin.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_health_is_not_serving_while_the_database_is_out_of_reach_and_serving_once_lookups_answer_again(
    tmp_path: Path, database_url: str
) -> None:
    with reachable_on_demand(tmp_path, database_url) as (running, allow, admin, probe):
        platform = admin.add_member("platform-a")
        watch = health_pb2_grpc.HealthStub(probe).Watch(health_pb2.HealthCheckRequest(service="jpr.v1.Registry"), timeout=60)
        client = RegistryClient(platform)
        try:
            assert next(watch).status == SERVING
            assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
            allow(False)  # every session of the registry's role ends, and no new one may start
            assert next(watch).status == NOT_SERVING  # pushed to watchers, within max_lag and a monitor round
            assert statuses(probe) == {"": NOT_SERVING, "jpr.v1.Registry": NOT_SERVING, "jpr.v1.Admin": SERVING}
            with pytest.raises(RPCError) as refused:
                client.lookup(applicant(("cn_ric", RIC)))
            assert refused.value.status is grpc.StatusCode.UNAVAILABLE  # what health announced
            allow(True)
            assert next(watch).status == SERVING
            assert statuses(probe) == dict.fromkeys(SERVICES, SERVING)
            assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
        finally:
            watch.cancel()
            client.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_certificate_the_replica_cannot_check_while_its_database_is_away_is_unavailable_not_internal(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from registry.crypto import pki

    with reachable_on_demand(tmp_path, database_url) as (running, allow, admin, probe):
        platform = admin.add_member("platform-a")
        key_pem, csr = pki.make_csr("platform-a", pki.ROLE_MEMBER)
        unknown = replace(platform, certificate=admin.issuer.sign(csr, "platform-a", pki.ROLE_MEMBER).decode(), private_key=key_pem.decode())
        allow(False)
        with RegistryClient(unknown) as client, pytest.raises(RPCError) as refused:
            client.lookup(applicant(("cn_ric", RIC)))
        assert refused.value.status is grpc.StatusCode.UNAVAILABLE and "could not reach its database" in refused.value.message
        assert statuses(probe)["jpr.v1.Admin"] == SERVING  # registered certificates are still checked from memory
    assert not [r for r in caplog.records if r.exc_info and "jpr.access" in r.name and "refused" in r.getMessage()]
