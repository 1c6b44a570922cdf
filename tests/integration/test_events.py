"""Every state change writes its event row in the same transaction: both or neither."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from sqlalchemy import select, text

from jpr_client import Credentials, RPCError, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2
from registry.store.models import EventRow, ListingRow, ReportRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import report


def events(registry: Registry) -> list[tuple[str, str | None]]:
    with registry.database.read() as conn:
        return [(r.kind, r.report_id) for r in conn.execute(select(EventRow.kind, EventRow.report_id).order_by(EventRow.seq))]


def fail_event_inserts(registry: Registry) -> None:
    """A real database fault: the events table refuses inserts."""
    with registry.database.engine.begin() as conn:
        if registry.database.is_sqlite:
            conn.execute(text("CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'injected fault'); END"))
            return
        conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER refuse_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()"))


def test_each_change_leaves_its_event(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as client:
        first = client.submit_report(report(("cn_ric", "11010519491231002X"))).report_id
        second = client.submit_report(report(("cn_ric", "110101199003070978"))).report_id
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=first))
    admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=second, reason="not serious enough"))
    kinds = [k for k, _ in events(registry) if k != "certificate.registered"]  # the credentials' certificates
    assert kinds == [
        "member.created",
        "subject.created", "report.submitted",
        "subject.created", "report.submitted",
        "report.accepted", "listing.created",
        "report.rejected",
    ]
    with registry.database.read() as conn:
        actor, reason = conn.execute(select(EventRow.actor, EventRow.detail).where(EventRow.kind == "report.rejected")).one()
    assert actor == "admin:admin" and reason["reason"] == "not serious enough"


def test_a_failed_event_write_undoes_the_submission(registry: Registry, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as client:
        fail_event_inserts(registry)
        with pytest.raises(RPCError) as caught:
            client.submit_report(report(("cn_ric", "11010519491231002X")))
    assert caught.value.status is grpc.StatusCode.INTERNAL
    assert "injected" not in caught.value.message  # database details stay in the log
    with registry.database.read() as conn:
        assert conn.execute(select(ReportRow.report_id)).all() == []


def test_a_failed_event_write_undoes_the_acceptance(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as client:
        report_id = client.submit_report(report(("cn_ric", "11010519491231002X"))).report_id
    fail_event_inserts(registry)
    with pytest.raises(RPCError):
        admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id))
    with registry.database.read() as conn:
        assert conn.execute(select(ReportRow.status)).scalar_one() == "SUBMITTED"
        assert conn.execute(select(ListingRow.id)).all() == []
