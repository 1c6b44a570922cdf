"""`Admin/ListEvents` and `jpr admin events`: the event log by actor, kind and time, after a leaked admin credential."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from jpr_client import Credentials, RPCError, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2
from registry.store.models import EventRow
from registry.store.pages import encode_page_token
from tests.conftest import AdminClient, Registry
from tests.integration.test_certificates import jpr  # noqa: F401 (a fixture)
from tests.integration.test_lookup import OTHER_RIC, RIC, report

USCC = "91350100M000100Y43"


@dataclass(frozen=True)
class Decisions:
    """Three reports decided by two named admins, bob's an hour after alice's first."""

    alice: tuple[str, ...]  # her credentials flags for `jpr`
    accepted: str  # by alice
    rejected_by_bob: str
    rejected_by_alice: str
    bob_from: datetime  # the registry's time just before bob decided


@pytest.fixture
def decisions(
    registry: Registry, member: Callable[[str], Credentials], jpr: Callable[..., str], tmp_path: Path  # noqa: F811
) -> Decisions:
    with RegistryClient(member("platform-a")) as client:
        first, second, third = (client.submit_report(report(i)).report_id for i in (("cn_ric", RIC), ("cn_ric", OTHER_RIC), ("cn_uscc", USCC)))
    for name in ("alice", "bob"):
        jpr("admin", "admins", "add", name, "--out", str(tmp_path / f"{name}.json"))
    alice, bob = (("--credentials", str(tmp_path / f"{name}.json")) for name in ("alice", "bob"))
    jpr("admin", "reports", "accept", first, "--reason", "two platforms confirmed", *alice)
    registry.clock.offset_seconds += 3600
    bob_from = registry.clock()
    jpr("admin", "reports", "reject", second, "--reason", "evidence too thin", *bob)
    jpr("admin", "reports", "reject", third, "--reason", "not serious enough", *alice)
    return Decisions(alice=alice, accepted=first, rejected_by_bob=second, rejected_by_alice=third, bob_from=bob_from)


def list_events(admin: AdminClient, **fields: Any) -> admin_pb2.ListEventsResponse:
    response: admin_pb2.ListEventsResponse = admin.call("ListEvents", admin_pb2.ListEventsRequest(**fields))
    return response


def refusal(admin: AdminClient, method: str, request: object) -> RPCError:
    with pytest.raises(RPCError) as caught:
        admin.call(method, request)
    return caught.value


def test_events_of_one_admin_are_exactly_theirs_oldest_first(registry: Registry, admin: AdminClient, decisions: Decisions) -> None:
    events = list(list_events(admin, actor="admin:alice").events)
    with registry.database.session() as session:
        recorded = session.scalars(select(EventRow.seq).where(EventRow.actor == "admin:alice").order_by(EventRow.seq)).all()
    assert [e.seq for e in events] == list(recorded)
    assert [(e.kind, e.report_id) for e in events] == [
        ("report.accepted", decisions.accepted),
        ("listing.created", decisions.accepted),
        ("report.rejected", decisions.rejected_by_alice),
    ]
    assert {e.actor for e in events} == {"admin:alice"}
    listed = events[1]
    assert listed.subject_id.startswith("S") and listed.listing_id.startswith("L")
    assert events[2].listing_id == "" and json.loads(events[2].detail_json)["reason"] == "not serious enough"
    assert [e.kind for e in list_events(admin, actor="admin:bob").events] == ["report.rejected"]
    assert list_events(admin, actor="admin:carol").events == []


def test_kind_prefix_and_since_narrow_the_events(admin: AdminClient, decisions: Decisions) -> None:
    reports = list_events(admin, kind_prefix="report.", page_size=500).events
    assert {e.kind.split(".")[0] for e in reports} == {"report"}
    assert [e.kind for e in reports].count("report.submitted") == 3
    assert list_events(admin, kind_prefix="report%").events == []  # a prefix, not a pattern
    since = admin_pb2.ListEventsRequest().since
    since.FromDatetime(decisions.bob_from)
    later = list_events(admin, kind_prefix="report.", since=since).events
    assert [(e.actor, e.report_id) for e in later] == [("admin:bob", decisions.rejected_by_bob), ("admin:alice", decisions.rejected_by_alice)]
    before = list_events(admin, kind_prefix="report.rejected", until=since).events
    assert before == []


def test_pages_of_one_walk_every_event_in_order(admin: AdminClient, decisions: Decisions) -> None:
    everything = list_events(admin, page_size=500)
    assert everything.next_page_token == ""
    walked, token = [], ""
    while True:
        page = list_events(admin, page_size=1, page_token=token)
        walked.extend(page.events)
        token = page.next_page_token
        if not token:
            break
    assert walked == list(everything.events)
    assert [e.seq for e in walked] == sorted(e.seq for e in walked)


def test_bad_filters_and_tokens_are_invalid_argument_naming_the_field(admin: AdminClient, decisions: Decisions) -> None:
    token = list_events(admin, page_size=1).next_page_token
    now = admin_pb2.ListEventsRequest().since
    now.FromDatetime(decisions.bob_from)
    earlier = admin_pb2.ListEventsRequest().since
    earlier.FromDatetime(decisions.bob_from - timedelta(hours=1))
    refusals = {
        "garbage token": refusal(admin, "ListEvents", admin_pb2.ListEventsRequest(page_token="not-a-token")),
        "ListEvents token to ListAppeals": refusal(admin, "ListAppeals", admin_pb2.ListAppealsRequest(page_token=token)),
        "ListEvents token to ListListings": refusal(admin, "ListListings", admin_pb2.ListListingsRequest(page_token=token)),
        "since equals until": refusal(admin, "ListEvents", admin_pb2.ListEventsRequest(since=now, until=now)),
        "since after until": refusal(admin, "ListEvents", admin_pb2.ListEventsRequest(since=now, until=earlier)),
        "page_size 501": refusal(admin, "ListEvents", admin_pb2.ListEventsRequest(page_size=501)),
        "until past year 9999": refusal(admin, "ListEvents", admin_pb2.ListEventsRequest(until={"seconds": 253402300800})),
    }
    assert {why: error.status for why, error in refusals.items()} == dict.fromkeys(refusals, grpc.StatusCode.INVALID_ARGUMENT)
    assert "page_token" in refusals["garbage token"].message
    assert "not a ListAppeals token" in refusals["ListEvents token to ListAppeals"].message
    assert "not before until" in refusals["since after until"].message
    assert "page_size 501" in refusals["page_size 501"].message
    assert refusals["until past year 9999"].message.startswith("until: ")
    appeals_token = encode_page_token(decisions.bob_from, "A5")  # what ListAppeals answers after appeal A5
    assert refusal(admin, "ListEvents", admin_pb2.ListEventsRequest(page_token=appeals_token)).message == (
        "page_token is not a ListEvents token; pass the next_page_token ListEvents returned"
    )


def test_jpr_admin_events_prints_one_actors_events_as_a_table_or_json(
    decisions: Decisions, jpr: Callable[..., str], capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    table = jpr("admin", "events", "--actor", "admin:alice", *decisions.alice).splitlines()
    assert table[0].split() == ["SEQ", "OCCURRED_AT", "ACTOR", "KIND", "IDS", "REASON"]
    assert [line.split()[4] for line in table[1:]] == ["report.accepted", "listing.created", "report.rejected"]  # the time is two words
    assert "two platforms confirmed" in table[1] and decisions.rejected_by_alice in table[3]
    paged = jpr("admin", "events", "--kind", "report.rejected", "--page-size", "1")
    assert decisions.rejected_by_bob in paged and "more: --page-token " in paged
    since = decisions.bob_from.isoformat()
    rows = json.loads(jpr("admin", "events", "--actor", "admin:alice", "--since", since, "--json"))
    assert rows["next_page_token"] == ""
    assert [(r["kind"], r["report_id"], r["detail"]["reason"]) for r in rows["items"]] == [
        ("report.rejected", decisions.rejected_by_alice, "not serious enough")
    ]
    assert rows["items"][0]["occurred_at"].endswith("+00:00")
    with pytest.raises(SystemExit) as exited:
        jpr("admin", "events", "--since", "yesterday")
    assert exited.value.code == 2 and "--since" in capsys.readouterr().err
