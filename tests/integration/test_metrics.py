"""Prometheus metrics, scraped over plain HTTP from a serving registry while a scenario runs."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from jpr_client import Credentials, RegistryClient, RetryConfig, RPCError, normalize
from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc
from jpr_client.client import secure_channel
from registry.crypto import pki
from registry.datadir import ADMIN_CREDENTIALS, PROBE_CREDENTIALS, DataDir
from registry.server.app import RunningRegistry, start
from registry.settings import load_settings
from tests.conftest import AdminClient, Ticks
from tests.integration.test_health import reachable_on_demand
from tests.integration.test_lookup import OTHER_RIC, PHONE, RIC, accept, applicant, report
from tests.integration.test_replicas import valid_ric
from tests.integration.test_streams import Streams, new_data_dir, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKENIZE, LOOKUP, BATCH = "/jpr.v1.Registry/Tokenize", "/jpr.v1.Registry/Lookup", "/jpr.v1.Registry/LookupBatch"
LIST_MEMBERS = "/jpr.v1.Admin/ListMembers"
# Depend on time, not on what was called: compared by value, not by delta.
TIMED = ("_created", "_bucket", "jpr_call_duration_seconds_sum", "jpr_index_lag_seconds", "jpr_lookup_index_", "jpr_open_streams")


def scrape(running: RunningRegistry) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What moved between two scrapes, time-dependent samples left out."""
    return {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if value != before.get(key, 0.0) and not any(part in key[0] for part in TIMED)
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@contextmanager
def metered(tmp_path: Path, database_url: str, **settings: object) -> Iterator[tuple[RunningRegistry, AdminClient, Path]]:
    """A registry serving metrics on a free loopback port, its clock of ticks frozen (rate limits never refill)."""
    data_dir = new_data_dir(tmp_path)
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "metrics_listen": "127.0.0.1:0", "database_url": database_url,
             "expiry_interval_seconds": 86_400, "checkpoint_interval_seconds": 10, **settings}
    running = start(load_settings(flags, environ={}), ticks=Ticks())
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}"), DataDir(data_dir).issuer())
    try:
        yield running, admin, data_dir
    finally:
        admin.close()
        running.stop(grace=None)


def run_scenario(running: RunningRegistry, admin: AdminClient, platform: Credentials) -> list[bytes]:
    """Five elements tokenized, a lookup, a batch of three, a refused call, a rate-limited lookup, an expiry pass.
    The tokens the scenario saw."""
    with RegistryClient(platform, retry=RetryConfig(max_pushback_wait=0)) as client:
        tokens = [t.value for t in client.tokenize([normalize("cn_ric", valid_ric(n)) for n in range(5)])]
        assert client.lookup(applicant(("cn_ric", RIC))).matches
        client.lookup_batch([applicant(("cn_ric", RIC)), applicant(("cn_ric", OTHER_RIC)), applicant(("phone", "13900139000"))])
        with pytest.raises(RPCError) as limited:
            client.lookup(applicant(("cn_ric", valid_ric(9))))  # the 5th applicant: past the burst of 4
        assert limited.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
    channel = secure_channel(platform)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            admin_pb2_grpc.AdminStub(channel).ListMembers(admin_pb2.ListMembersRequest(), timeout=10)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        channel.close()
    running.expiry.record_now()
    return tokens


@pytest.fixture
def listed(tmp_path: Path, database_url: str) -> Iterator[tuple[RunningRegistry, AdminClient, Credentials]]:
    """A metered registry with a member and one listing (a RIC and a phone), lookups limited to 4 applicants."""
    with metered(tmp_path, database_url, lookups_per_second=1, lookups_burst=4) as (running, admin, _):
        platform = admin.add_member("platform-a")
        with RegistryClient(platform) as client:
            accept(admin, client.submit_report(report(("cn_ric", RIC), ("phone", PHONE))).report_id)
        # The periodic passes stop first (a pass under way finishes), then the listing's events are signed: no pass
        # may end in the middle of a scenario, counted as housekeeping (one that came due as a slow machine's setup
        # ended could find the leaves already integrated by this call, then count after the first scrape).
        running.checkpoints.close()
        running.checkpoints.sign_now()
        yield running, admin, platform


def test_the_counters_move_by_exactly_what_the_scenario_did(listed: tuple[RunningRegistry, AdminClient, Credentials]) -> None:
    running, admin, platform = listed
    before = scrape(running)
    run_scenario(running, admin, platform)
    after = scrape(running)
    assert moved(before, after) == {
        key("jpr_calls_total", method=TOKENIZE, status="OK"): 4,  # 5 elements, then 1, 3 and 1 before each lookup
        key("jpr_calls_total", method=LOOKUP, status="OK"): 1,
        key("jpr_calls_total", method=LOOKUP, status="RESOURCE_EXHAUSTED"): 1,
        key("jpr_calls_total", method=BATCH, status="OK"): 1,
        key("jpr_calls_total", method=LIST_MEMBERS, status="PERMISSION_DENIED"): 1,
        key("jpr_call_duration_seconds_count", method=TOKENIZE): 4,
        key("jpr_call_duration_seconds_count", method=LOOKUP): 2,
        key("jpr_call_duration_seconds_count", method=BATCH): 1,
        key("jpr_call_duration_seconds_count", method=LIST_MEMBERS): 1,
        key("jpr_call_items_count", method=TOKENIZE): 4,
        key("jpr_call_items_sum", method=TOKENIZE): 10,
        key("jpr_call_items_count", method=LOOKUP): 1,  # the refused lookup's applicant was not served
        key("jpr_call_items_sum", method=LOOKUP): 1,
        key("jpr_call_items_count", method=BATCH): 1,
        key("jpr_call_items_sum", method=BATCH): 3,
        key("jpr_member_items_total", member="platform-a", method=TOKENIZE): 10,
        key("jpr_member_items_total", member="platform-a", method=LOOKUP): 1,
        key("jpr_member_items_total", member="platform-a", method=BATCH): 3,
        key("jpr_matched_applicants_total", method=LOOKUP): 1,
        key("jpr_matched_applicants_total", method=BATCH): 1,
        key("jpr_rate_limit_refusals_total", member="platform-a", kind="applicants"): 1,
        key("jpr_housekeeping_passes_total", task="expiry"): 1,
    }
    assert after[key("jpr_lookup_index_subjects")] == 1
    assert after[key("jpr_lookup_index_tokens")] == 2
    assert 0 <= after[key("jpr_index_lag_seconds", view="lookups")] < 30


def test_no_label_carries_a_token_an_identifier_or_a_certificate_fingerprint(
    listed: tuple[RunningRegistry, AdminClient, Credentials]
) -> None:
    running, admin, platform = listed
    tokens = run_scenario(running, admin, platform)
    secrets = [RIC, OTHER_RIC, PHONE, "13900139000", *(valid_ric(n) for n in range(10)),
               pki.fingerprint(platform.certificate.encode())]
    secrets += [t.hex() for t in tokens] + [base64.b64encode(t).decode() for t in tokens]
    labels = {(name, value) for _, pairs in scrape(running) for name, value in pairs}
    assert {name for name, _ in labels} <= {"method", "status", "member", "kind", "limit", "view", "task", "le"}
    leaked = [(name, value) for name, value in labels if any(secret in value for secret in secrets)]
    assert leaked == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_open_streams_are_counted_by_method_and_a_stream_past_the_callers_share_is_a_refusal(tmp_path: Path, database_url: str) -> None:
    with metered(tmp_path, database_url, max_streams_per_caller=1) as (running, _, data_dir):
        probe = Streams(secure_channel(Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}")))
        watches = key("jpr_open_streams", method="/grpc.health.v1.Health/Watch")
        try:
            probe.health_watch()
            probe.health_watch()  # the probe's share is one
            assert len(probe.held) == 1 and len(probe.refused) == 1
            scraped = scrape(running)
            assert scraped[watches] == 1
            assert scraped[key("jpr_stream_refusals_total", limit="per_caller")] == 1
        finally:
            probe.close()
        wait_until(lambda: scrape(running)[watches] == 0)


def test_a_call_grpc_refuses_at_the_concurrency_cap_is_counted_and_has_its_access_record(tmp_path: Path, database_url: str) -> None:
    records: list[logging.LogRecord] = []
    handler, access = _Collect(records), logging.getLogger("jpr.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    with metered(tmp_path, database_url, max_concurrent_calls=2) as (running, admin, data_dir):
        platform = admin.add_member("platform-a")
        probe = Streams(secure_channel(Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}")))
        try:
            with RegistryClient(platform, retry=RetryConfig(attempts=1)) as client:
                client.lookup(applicant(("cn_ric", RIC)))  # connected before the cap is reached
                probe.health_watch()
                probe.health_watch()  # two calls in progress: the cap
                before = scrape(running)
                with pytest.raises(RPCError) as refused:
                    client.lookup(applicant(("cn_ric", RIC)))  # its first call, Tokenize, is refused
                assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "Concurrent RPC limit exceeded" in refused.value.message
                assert moved(before, scrape(running)) == {
                    key("jpr_concurrency_refusals_total"): 1,
                    key("jpr_calls_total", method=TOKENIZE, status="RESOURCE_EXHAUSTED"): 1,
                    key("jpr_call_duration_seconds_count", method=TOKENIZE): 1,
                }
        finally:
            probe.close()
            running.access_log.flush_lines()
            access.removeHandler(handler)
            access.setLevel(level)
    at_cap = [r for r in records if getattr(r, "status", None) == "RESOURCE_EXHAUSTED"]
    assert [(r.method, r.role, r.request_id) for r in at_cap] == [(TOKENIZE, None, None)]  # type: ignore[attr-defined]


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.INFO)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_write_run_again_after_a_conflict_is_counted_once(tmp_path: Path, database_url: str) -> None:
    with metered(tmp_path, database_url) as (running, _, _):
        database = running.database
        with database.engine.connect() as other:
            other.execute(text("CREATE TABLE scratch (k integer PRIMARY KEY)"))
            other.commit()
            other.execute(text("INSERT INTO scratch VALUES (1)"))  # uncommitted: the registry's insert waits for it
            insert = text("INSERT INTO scratch SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM scratch WHERE k = 1)")
            writer = threading.Thread(target=database.write, args=(lambda session: session.execute(insert),))
            writer.start()
            wait_until(lambda: _waiting_for_a_lock(running))
            other.commit()  # the registry's insert now conflicts; run again, it sees the row and inserts nothing
        writer.join(timeout=10)
        assert scrape(running)[key("jpr_write_conflict_retries_total")] == 1


def _waiting_for_a_lock(running: RunningRegistry) -> bool:
    with running.database.read() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_view_that_cannot_follow_the_event_log_counts_its_failed_polls_and_its_lag_grows(tmp_path: Path, database_url: str) -> None:
    with reachable_on_demand(tmp_path, database_url, metrics_listen="127.0.0.1:0") as (running, allow, _, _):
        assert scrape(running).get(key("jpr_follow_errors_total", view="lookups"), 0) == 0
        allow(False)
        wait_until(lambda: scrape(running).get(key("jpr_follow_errors_total", view="lookups"), 0) >= 2, timeout=10)
        assert scrape(running)[key("jpr_index_lag_seconds", view="lookups")] > 0.1  # polls every 0.1 s while reachable
        allow(True)


def test_metrics_are_off_unless_an_address_is_given(tmp_path: Path, database_url: str) -> None:
    with metered(tmp_path, database_url, metrics_listen="") as (running, _, _):
        assert running.metrics_port is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_metrics_port_already_taken_stops_the_start_naming_metrics_listen(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = {"data_dir": new_data_dir(tmp_path), "listen": "127.0.0.1:0", "metrics_listen": f"127.0.0.1:{port}",
                 "database_url": database_url}
        with pytest.raises(OSError, match=rf"cannot serve metrics on 127\.0\.0\.1:{port} \(--metrics-listen, JPR_METRICS_LISTEN\)"):
            start(load_settings(flags, environ={}))
