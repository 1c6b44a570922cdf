"""Retries the gRPC way: the channel's service config retries UNAVAILABLE, and batches wait out the rate limit."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from jpr_client import RegistryClient, RetryConfig, RPCError, Verdict
from registry.server.health import NOT_SERVING
from tests.integration.test_health import reachable_on_demand, statuses
from tests.integration.test_lookup import applicant
from tests.integration.test_replicas import valid_ric
from tests.integration.test_streams import administered, wait_until


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_unavailable_registry_sees_every_attempt_of_the_policy_and_the_sdk_raises_after_the_last(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with reachable_on_demand(tmp_path, database_url) as (running, allow, admin, probe):
        platform = admin.add_member("platform-a")
        retry = RetryConfig(attempts=3, initial_backoff=0.01, max_backoff=0.02)
        allow(False)  # the member view cannot reach its database: member calls answer UNAVAILABLE
        wait_until(lambda: statuses(probe)["jpr.v1.Registry"] == NOT_SERVING, timeout=10)
        running.access_log.flush_lines()
        with caplog.at_level(logging.INFO, logger="jpr.access"), RegistryClient(platform, retry=retry) as client:
            with pytest.raises(RPCError) as refused:
                client.get_report("00000000-0000-0000-0000-000000000000")
            running.access_log.flush_lines()
        lines = [line for r in caplog.records for line in r.getMessage().splitlines()
                 if "/jpr.v1.Registry/GetReport member:platform-a" in line]
    assert refused.value.status is grpc.StatusCode.UNAVAILABLE
    assert len(lines) == 3 and all(" UNAVAILABLE " in line for line in lines), lines


@pytest.mark.long
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_lookup_batch_beyond_the_members_burst_waits_the_pushback_and_completes(tmp_path: Path, database_url: str) -> None:
    limits = {"lookups_per_second": 2000, "lookups_burst": 2000}
    with administered(tmp_path, database_url, **limits) as (running, _, admin):
        with RegistryClient(admin.add_member("platform-a")) as client:
            applicants = [applicant(("cn_ric", valid_ric(n))) for n in range(6000)]
            results = client.lookup_batch(applicants)
    assert [r.verdict for r in results] == [Verdict.CLEAR] * 6000
