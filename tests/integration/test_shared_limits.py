"""Rate limits shared by every replica and process: leases of one bucket per member and kind in the database.

Limiters in one test process stand for processes (each keeps its own leases,
as each `jpr serve` process does); real `jpr serve` replicas on one database
show the same end to end (on SQLite: several processes sharing one file).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import event

from jpr_client import Applicant, Credentials, RegistryClient, RetryConfig, Role, RPCError, normalize
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.domain.errors import ResourceExhausted, Unavailable
from registry.domain.limits import Rate, RateLimiter, lease_size
from registry.store.buckets import BucketStore
from registry.store.database import Database
from tests.conftest import REGISTRY_NAME, AdminClient, Ticks
from tests.integration.test_replicas import valid_ric
from tests.processes import ServeProcess

RATE = Rate(per_second=10, burst=80)  # leases of 5 applicants
KIND = "applicants"


@pytest.fixture
def buckets(database_url: str) -> Iterator[BucketStore]:
    database = Database(database_url)
    try:
        yield BucketStore(database)
    finally:
        database.dispose()


def limiters(count: int, buckets: BucketStore, ticks: Ticks) -> list[RateLimiter]:
    return [RateLimiter({KIND: RATE}, ticks, buckets=buckets) for _ in range(count)]


def spend_until_refused(processes: list[RateLimiter], member: str = "platform-a", amount: int = 1) -> int:
    """Take `amount` through each process in turn until every one is refused; what was taken in all."""
    taken, refused = 0, set()
    while len(refused) < len(processes):
        for index, limiter in enumerate(processes):
            if index in refused:
                continue
            try:
                limiter.take(member, KIND, amount)
                taken += amount
            except ResourceExhausted:
                refused.add(index)
    return taken


def test_three_processes_spending_a_full_bucket_are_refused_at_exactly_the_burst(buckets: BucketStore) -> None:
    assert spend_until_refused(limiters(3, buckets, Ticks())) == RATE.burst  # one process alone would allow 80 each


def test_after_idling_with_leases_held_a_member_overshoots_by_at_most_one_lease_per_other_process(buckets: BucketStore) -> None:
    ticks = Ticks()
    processes = limiters(3, buckets, ticks)
    for limiter in processes:
        limiter.take("platform-a", KIND, 1)  # each now holds the rest of a lease
    ticks.now += 3600
    taken = spend_until_refused(processes)
    assert RATE.burst <= taken <= RATE.burst + 2 * lease_size(RATE)


def test_one_process_alone_gets_exactly_the_burst_after_idling_with_a_lease_held(buckets: BucketStore) -> None:
    ticks = Ticks()
    [alone] = limiters(1, buckets, ticks)
    alone.take("platform-a", KIND, 1)
    ticks.now += 3600
    assert spend_until_refused([alone]) == RATE.burst


def test_a_lease_given_back_at_close_is_spent_through_another_process(buckets: BucketStore) -> None:
    ticks = Ticks()
    stopping, staying = limiters(2, buckets, ticks)
    stopping.take("platform-a", KIND, 1)
    stopping.close()
    assert spend_until_refused([staying]) == RATE.burst - 1


def test_a_process_dying_with_a_lease_costs_the_member_at_most_that_lease_until_the_bucket_refills(buckets: BucketStore) -> None:
    ticks = Ticks()
    dying, staying = limiters(2, buckets, ticks)
    dying.take("platform-a", KIND, 1)
    del dying  # killed: it never gives its lease back
    assert spend_until_refused([staying]) >= RATE.burst - 1 - lease_size(RATE)
    ticks.now += RATE.burst / RATE.per_second
    assert spend_until_refused([staying]) == RATE.burst


def test_a_refusal_says_when_the_shared_bucket_holds_enough(buckets: BucketStore) -> None:
    ticks = Ticks()
    one, two = limiters(2, buckets, ticks)
    one.take("platform-a", KIND, 78)
    two.take("platform-a", KIND, 1)
    with pytest.raises(ResourceExhausted) as refused:
        two.take("platform-a", KIND, 6)  # it holds 1, the bucket has 5 more in 0.5 s
    assert refused.value.retry_after_ms == 500
    one.take("platform-b", KIND, 80)  # each member has a bucket of its own
    ticks.now += 0.5
    two.take("platform-a", KIND, 6)


def test_a_process_reaches_the_database_once_per_lease_and_not_for_refused_calls(database_url: str) -> None:
    database = Database(database_url)
    statements: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    rate = Rate(per_second=500, burst=5000)  # leases of 250
    limiter = RateLimiter({KIND: rate}, Ticks(), buckets=BucketStore(database))
    try:
        for _ in range(1000):
            limiter.take("platform-a", KIND, 1)
        assert sum("FROM rate_buckets" in s for s in statements) == 5  # 4 leases of 250, the first re-reading its insert
        limiter.take("platform-a", KIND, 4000)
        before = len(statements)
        for _ in range(100):
            with pytest.raises(ResourceExhausted):
                limiter.take("platform-a", KIND, 1)
        assert len(statements) == before  # refused locally: the bucket cannot have refilled
    finally:
        database.dispose()


def test_a_database_that_does_not_answer_makes_the_call_unavailable_not_internal() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:1/jpr?connect_timeout=2")
    try:
        with pytest.raises(Unavailable, match="rate limit"):
            RateLimiter({KIND: RATE}, Ticks(), buckets=BucketStore(database)).take("platform-a", KIND, 1)
    finally:
        database.dispose()


# ---------------------------------------------------------------- replicas, end to end

SLOW = Rate(per_second=1, burst=60)  # leases of 0.5: a refill of 1 a second is all the test's timing adds
LIMITED = {"JPR_LOOKUPS_PER_SECOND": str(SLOW.per_second), "JPR_LOOKUPS_BURST": str(SLOW.burst)}
BATCH = 5


def new_members(data_dir: Path, endpoint: str, *names: str) -> list[Credentials]:
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(endpoint), DataDir(data_dir).issuer())
    try:
        return [admin.add_member(name) for name in names]
    finally:
        admin.close()


def spend_through(endpoints: list[str], credentials: Credentials) -> int:
    """Applicants looked up in batches of 5, through each endpoint in turn, until each refuses."""
    clients = [RegistryClient(credentials.with_endpoint(e), retry=RetryConfig(max_pushback_wait=0)) for e in endpoints]
    people = [Applicant(Role.MERCHANT, (normalize("cn_ric", valid_ric(n)),)) for n in range(BATCH)]
    taken, refused = 0, set()
    try:
        while len(refused) < len(clients):
            for index, client in enumerate(clients):
                if index in refused:
                    continue
                try:
                    client.lookup_batch(people)
                    taken += BATCH
                except RPCError as error:
                    assert error.status is grpc.StatusCode.RESOURCE_EXHAUSTED and error.retry_after, error
                    refused.add(index)
    finally:
        for client in clients:
            client.close()
    return taken


def test_a_member_spending_through_two_replicas_is_refused_at_the_same_total_as_through_one(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    with ServeProcess(data_dir, database_url, environ=LIMITED) as one, ServeProcess(data_dir, database_url, environ=LIMITED) as two:
        alone, spread = new_members(data_dir, one.endpoint, "platform-a", "platform-b")
        started = time.monotonic()
        through_one = spend_through([one.endpoint], alone)
        through_both = spend_through([one.endpoint, two.endpoint], spread)
        most = SLOW.burst + (time.monotonic() - started) * SLOW.per_second + lease_size(SLOW)
    assert SLOW.burst <= through_one <= most
    assert SLOW.burst <= through_both <= most  # not twice the burst: at most one lease more, for the other replica


def test_a_replica_killed_holding_a_lease_leaves_the_others_the_rest_of_the_bucket(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    limited = {"JPR_LOOKUPS_PER_SECOND": "20", "JPR_LOOKUPS_BURST": "400"}  # leases of 10
    with ServeProcess(data_dir, database_url, environ=limited) as dying, ServeProcess(data_dir, database_url, environ=limited) as staying:
        [member] = new_members(data_dir, staying.endpoint, "platform-a")
        spend_once = RegistryClient(member.with_endpoint(dying.endpoint))
        spend_once.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", valid_ric(0)),)))
        spend_once.close()
        dying.kill()
        taken = spend_through([staying.endpoint], member)
    assert taken >= 400 - 1 - 10 - BATCH  # what the killed replica held is all the member lost
