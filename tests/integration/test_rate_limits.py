"""Per-member rate limits on the oracles, counted in elements and applicants, with a controllable clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from jpr_client import Applicant, Credentials, RegistryClient, RetryConfig, Role, RPCError, normalize
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.domain.errors import ResourceExhausted
from registry.domain.limits import Rate, RateLimiter
from registry.server.app import RunningRegistry, start
from registry.settings import load_settings
from tests.conftest import REGISTRY_NAME, AdminClient, Ticks
from tests.integration.test_replicas import valid_ric



def test_a_bucket_refills_at_its_rate_and_says_how_long_to_wait() -> None:
    ticks = Ticks()
    limiter = RateLimiter({"applicants": Rate(per_second=10, burst=20)}, ticks)
    limiter.take("platform-a", "applicants", 20)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.take("platform-a", "applicants", 5)
    assert refused.value.retry_after_ms == 500
    limiter.take("platform-b", "applicants", 20)  # each member has its own bucket
    ticks.now += 0.5
    limiter.take("platform-a", "applicants", 5)
    with pytest.raises(ResourceExhausted, match="more than your limit allows at once"):
        limiter.take("platform-a", "applicants", 21)
    RateLimiter({"applicants": Rate(per_second=0, burst=0)}, ticks).take("platform-a", "applicants", 10**6)  # 0: unlimited


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[tuple[RunningRegistry, Ticks, Credentials]]:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url,
             "lookups_per_second": 2, "lookups_burst": 4, "tokenize_per_second": 10, "tokenize_burst": 12}
    ticks = Ticks()
    running = start(load_settings(flags, environ={}), ticks=ticks)
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}"), DataDir(data_dir).issuer())
    try:
        yield running, ticks, admin.add_member("platform-a")
    finally:
        admin.close()
        running.stop(grace=None)


def test_lookups_past_the_limit_are_resource_exhausted_with_a_retry_delay(limited: tuple[RunningRegistry, Ticks, Credentials]) -> None:
    _, ticks, credentials = limited
    with RegistryClient(credentials) as client:
        people = [Applicant(Role.MERCHANT, (normalize("cn_ric", valid_ric(n)),)) for n in range(3)]
        client.lookup_batch(people)  # 3 applicants (and 3 tokenized elements)
        client.lookup(people[0])  # the 4th applicant
        with pytest.raises(RPCError) as refused:
            client.lookup(people[1])
        assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rate limit for applicants" in refused.value.message
        assert refused.value.retry_after == 0.5
        assert refused.value.request_id  # the delay joins the request id's trailer, not replaces it
        ticks.now += 0.5
        client.lookup(people[1])


def test_tokenize_is_counted_in_elements(limited: tuple[RunningRegistry, Ticks, Credentials]) -> None:
    _, ticks, credentials = limited
    with RegistryClient(credentials, retry=RetryConfig(max_pushback_wait=0)) as client:  # see the refusal, do not wait it out
        client.tokenize([normalize("cn_ric", valid_ric(n)) for n in range(12)])
        with pytest.raises(RPCError) as refused:
            client.tokenize([normalize("phone", "13800138000")])
        assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.retry_after == 0.1
        ticks.now += 0.1
        client.tokenize([normalize("phone", "13800138000")])
