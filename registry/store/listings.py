"""Admin decisions on reports, and the listings they create or extend."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jpr_client.model import Category, Listing, ListingStatus, Report, ReportStatus, Role, Severity
from jpr_client.quoting import quoted
from registry.domain.errors import FailedPrecondition, NotFound, PermissionDenied
from registry.domain.model import Page
from registry.store import events
from registry.store.database import Database
from registry.store.models import ListingRow, MemberRow, ReportRow, RetractionRow
from registry.store.pages import decode_id_page_token, encode_page_token
from registry.store.refs import listing_ref, parse_ref, subject_ref
from registry.store.reports import report_view


# The statuses in which a listing answers lookups (PENDING_NOTICE with REVIEW).
IN_FORCE = (ListingStatus.ACTIVE, ListingStatus.PENDING_NOTICE)


class ListingStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def accept(
        self, report_id: str, *, term_days: int, reason: str, actor: str, now: datetime, notice_days: int = 0
    ) -> tuple[Report, Listing]:
        """Accept a submitted report: extend the subject's current listing or create one.

        With a notice window the new listing is PENDING_NOTICE until `listed_from`,
        and its term runs from then.
        """

        def work(session: Session) -> tuple[Report, Listing]:
            report = _submitted(session, report_id, "accepted")
            listing = _current_listing(session, report.subject_id, now)
            if listing is None:
                starts = now + timedelta(days=notice_days)
                ends = starts + timedelta(days=term_days)
                listing = ListingRow(
                    subject_id=report.subject_id,
                    status=(ListingStatus.PENDING_NOTICE if notice_days else ListingStatus.ACTIVE).value,
                    listed_from=starts,
                    listed_until=ends,
                    created_at=now,
                    updated_at=now,
                )
                session.add(listing)
                session.flush()
                kind = "listing.created"
            else:
                ends = max(now, listing.listed_from) + timedelta(days=term_days)
                listing.listed_until = max(listing.listed_until, ends)
                listing.updated_at = now
                kind = "listing.extended"
            _decide(report, ReportStatus.ACCEPTED, actor, reason, now)
            report.listing_id = listing.id
            report.term_ends_at = ends
            session.flush()
            events.record(session, at=now, actor=actor, kind="report.accepted", report_id=report_id, status=ReportStatus.ACCEPTED.value,
                          subject_id=report.subject_id, listing_id=listing.id, reason=reason, term_days=term_days,
                          term_ends_at=ends.isoformat())
            view = record_change(session, listing, kind, at=now, actor=actor, reason=reason, report_id=report_id)
            return report_view(session, report), view

        return self._db.write(work)

    def reject(self, report_id: str, *, reason: str, actor: str, now: datetime) -> Report:
        def work(session: Session) -> Report:
            report = _submitted(session, report_id, "rejected")
            _decide(report, ReportStatus.REJECTED, actor, reason, now)
            events.record(session, at=now, actor=actor, kind="report.rejected", report_id=report_id, status=ReportStatus.REJECTED.value,
                          subject_id=report.subject_id, reason=reason)
            return report_view(session, report)

        return self._db.write(work)

    def retract(self, report_id: str, reporter: str, *, envelope: bytes, reason: str, now: datetime) -> Report:
        """The reporter withdraws its report; a listing no other accepted report supports is lifted."""

        def work(session: Session) -> Report:
            report = session.get(ReportRow, report_id)
            # Another member's report and a missing one get the same answer: no probing for report ids.
            if report is None or report_view(session, report).reporter != reporter:
                raise PermissionDenied(f"you have no report {quoted(report_id)}; only its reporter may retract a report")
            if report.status == ReportStatus.RETRACTED.value:
                return report_view(session, report)  # the same withdrawal again
            if report.status == ReportStatus.REJECTED.value:
                raise FailedPrecondition(f"report {report_id} was rejected; there is nothing to retract")
            listing = None if report.listing_id is None else session.get(ListingRow, report.listing_id)
            before = None if listing is None else listing_view(session, listing, now)
            report.status = ReportStatus.RETRACTED.value
            session.add(RetractionRow(report_id=report_id, envelope=envelope, reason=reason, received_at=now))
            session.flush()
            events.record(session, at=now, actor=f"member:{reporter}", kind="report.retracted", report_id=report_id, status=ReportStatus.RETRACTED.value,
                          subject_id=report.subject_id, listing_id=report.listing_id, reason=reason)
            if listing is not None and before is not None:
                _without_report(session, listing, before, report_id, reason, now)
            return report_view(session, report)

        return self._db.write(work)

    def lift(self, listing_ref_: str, *, grounds: str, reason: str, not_before_days: int, actor: str, now: datetime) -> Listing:
        """End an ACTIVE listing early, with its grounds and reason; refused before `not_before_days`."""

        def work(session: Session) -> Listing:
            listing = session.get(ListingRow, parse_ref("L", listing_ref_))
            if listing is None:
                raise NotFound(f"no listing {listing_ref_}")
            status = effective_status(listing.status, listing.listed_from, listing.listed_until, now)
            if status not in (ListingStatus.ACTIVE, ListingStatus.PENDING_NOTICE):
                raise FailedPrecondition(f"listing {listing_ref_} is {status.value}; only an ACTIVE or PENDING_NOTICE listing can be lifted")
            allowed_from = listing.listed_from + timedelta(days=not_before_days)
            if now < allowed_from:
                raise FailedPrecondition(
                    f"listing {listing_ref_} may be lifted with grounds {grounds} from {allowed_from.date().isoformat()} "
                    f"({not_before_days} days after it began); a listing that was wrong is lifted with grounds ADMIN_CORRECTION"
                )
            listing.status = ListingStatus.LIFTED.value
            listing.updated_at = now
            return record_change(session, listing, "listing.lifted", at=now, actor=actor, reason=reason, grounds=grounds)

        return self._db.write(work)

    def quarantine(self, listing_id: int, figures: dict[str, Any], *, now: datetime) -> bool:
        """The flood guard holds an ACTIVE listing: lookups answer REVIEW (QUARANTINED) until released.

        False when it is no longer ACTIVE or already held (another replica's guard was first).
        """

        def work(session: Session) -> bool:
            listing = session.get(ListingRow, listing_id)
            if listing is None or listing.quarantined_at is not None:
                return False
            if effective_status(listing.status, listing.listed_from, listing.listed_until, now) is not ListingStatus.ACTIVE:
                return False
            released = (listing.quarantine or {}).get("released_matches")
            if released is not None and figures["matches"] < figures["factor"] * released:
                return False  # a person found the last burst right: only a far larger one is out of line again
            listing.quarantined_at, listing.quarantine, listing.updated_at = now, figures, now
            record_change(session, listing, "listing.quarantined", at=now, actor="registry", reason=figures["explanation"],
                          figures=figures)
            return True

        return self._db.write(work)

    def release(self, listing_ref_: str, *, reason: str, actor: str, now: datetime) -> Listing:
        """An admin ends a quarantine: the listing answers DENY again (LiftListing ends the listing instead)."""

        def work(session: Session) -> Listing:
            listing = session.get(ListingRow, parse_ref("L", listing_ref_))
            if listing is None:
                raise NotFound(f"no listing {listing_ref_}")
            status = effective_status(listing.status, listing.listed_from, listing.listed_until, now)
            if listing.quarantined_at is None or status is not ListingStatus.ACTIVE:
                raise FailedPrecondition(f"listing {listing_ref_} is not quarantined; only a quarantined ACTIVE listing can be released")
            figures = dict(listing.quarantine or {})
            # Kept for the guard: it holds this listing again only for a burst `factor` times this one.
            listing.quarantined_at, listing.updated_at = None, now
            listing.quarantine = {"released_at": now.isoformat(), "released_matches": figures.get("matches", 0)}
            return record_change(session, listing, "listing.released", at=now, actor=actor, reason=reason, figures=figures)

        return self._db.write(work)

    def object(self, listing_ref_: str, *, reason: str, actor: str, now: datetime) -> Listing:
        """Record an objection against a listing in its notice window."""

        def work(session: Session) -> Listing:
            listing = session.get(ListingRow, parse_ref("L", listing_ref_))
            if listing is None:
                raise NotFound(f"no listing {listing_ref_}")
            status = effective_status(listing.status, listing.listed_from, listing.listed_until, now)
            if status is not ListingStatus.PENDING_NOTICE:
                raise FailedPrecondition(
                    f"listing {listing_ref_} is {status.value}; objections are recorded during the notice window (file an appeal instead)"
                )
            events.record(session, at=now, actor=actor, kind="listing.objection", subject_id=listing.subject_id,
                          listing_id=listing.id, reason=reason)
            return listing_view(session, listing, now)

        return self._db.write(work)

    def record_expiries(self, *, now: datetime) -> int:
        """Mark listings past their notice ACTIVE and past their end EXPIRED, each with its event.

        Verdicts never wait for this (a listing past its end is EXPIRED to every
        reader already); it puts the change in the history. Safe on several
        replicas at once: the transaction re-reads the status it changes.
        """

        def work(session: Session) -> int:
            started = _transition(
                session, ListingRow.status == ListingStatus.PENDING_NOTICE.value, ListingRow.listed_from <= now,
                to=ListingStatus.ACTIVE, kind="listing.activated", reason="notice period ended", now=now,
            )
            ended = _transition(
                session, ListingRow.status == ListingStatus.ACTIVE.value, ListingRow.listed_until <= now,
                to=ListingStatus.EXPIRED, kind="listing.expired", reason="term ended", now=now,
            )
            return started + ended

        return self._db.write(work)

    def list(self, status: ListingStatus | None, page_size: int, page_token: str, *, now: datetime) -> Page[Listing]:
        after_id = decode_id_page_token(page_token, "ListListings", "")  # the bare number, as tokens always had it
        with self._db.session() as session:
            query = select(ListingRow).order_by(ListingRow.id)
            if after_id is not None:
                query = query.where(ListingRow.id > after_id)
            items: list[Listing] = []
            more = False
            # Status is filtered after deriving it (expiry needs no job), so scan in chunks.
            for row in session.scalars(query):
                view = listing_view(session, row, now)
                if status is not None and view.status is not status:
                    continue
                if len(items) == page_size:
                    more = True
                    break
                items.append(view)
        token = encode_page_token(now, items[-1].listing_id[1:]) if more else ""
        return Page(items=tuple(items), next_page_token=token)

    def signed_reports(self, report_ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """Report id -> (reporter, envelope as received) of these reports."""
        with self._db.session() as session:
            rows = session.execute(
                select(ReportRow.report_id, MemberRow.name, ReportRow.envelope)
                .join(MemberRow, MemberRow.id == ReportRow.member_id)
                .where(ReportRow.report_id.in_(report_ids))
            ).all()
        return {report_id: (reporter, envelope) for report_id, reporter, envelope in rows}


def effective_status(status: str, listed_from: datetime, listed_until: datetime, now: datetime) -> ListingStatus:
    """A listing past its start is ACTIVE, past its end EXPIRED, whether or not anything has run since."""
    current = ListingStatus(status)
    if current is ListingStatus.PENDING_NOTICE and listed_from <= now:
        current = ListingStatus.ACTIVE
    if current is ListingStatus.ACTIVE and listed_until <= now:
        return ListingStatus.EXPIRED
    return current


def listing_view(session: Session, row: ListingRow, now: datetime) -> Listing:
    reports = session.execute(
        select(ReportRow.report_id, ReportRow.member_id, ReportRow.role, ReportRow.category, ReportRow.severity)
        .where(ReportRow.listing_id == row.id, ReportRow.status == ReportStatus.ACCEPTED.value)
        .order_by(ReportRow.received_at)
    ).all()
    severities = {Severity(r.severity) for r in reports} or {Severity.SERIOUS}
    return Listing(
        listing_id=listing_ref(row.id),
        subject_id=subject_ref(row.subject_id),
        status=effective_status(row.status, row.listed_from, row.listed_until, now),
        roles=tuple(sorted({Role(r.role) for r in reports}, key=lambda x: x.value)),
        categories=tuple(sorted({Category(r.category) for r in reports}, key=lambda x: x.value)),
        severity=max(severities, key=lambda s: s.rank),
        listed_from=row.listed_from,
        listed_until=row.listed_until,
        reporting_platforms=len({r.member_id for r in reports}),
        report_ids=tuple(r.report_id for r in reports),
    )


def _transition(session: Session, *where: Any, to: ListingStatus, kind: str, reason: str, now: datetime) -> int:
    """Move the listings matching `where` to `to`, each with its event; the registry is the actor."""
    rows = session.scalars(select(ListingRow).where(*where)).all()
    for listing in rows:
        listing.status = to.value
        listing.updated_at = now
        record_change(session, listing, kind, at=now, actor="registry", reason=reason)
    return len(rows)


def _without_report(session: Session, listing: ListingRow, before: Listing, report_id: str, reason: str, now: datetime) -> None:
    """Report `report_id` no longer supports `listing` (which was `before`): recompute it from the others.

    None remain: LIFTED. Otherwise the listing ends at the latest end the remaining reports'
    acceptances gave it (the rule of `accept`), and its severity, categories and platforms are
    theirs (`listing_view` derives them): `listing.shortened` when the end moved earlier, else
    `listing.corrected`, each recording the listing before and after. A listing no longer in
    force (lifted, expired) keeps its history as it is.
    """
    if before.status not in IN_FORCE:
        return
    remaining = session.scalars(
        select(ReportRow.term_ends_at).where(ReportRow.listing_id == listing.id, ReportRow.status == ReportStatus.ACCEPTED.value)
    ).all()
    listing.updated_at = now
    if not remaining:
        listing.status = ListingStatus.LIFTED.value
        # The listing as members knew it, now lifted: its tokens and categories tell them whom to clear.
        record_change(session, listing, "listing.lifted", at=now, actor="registry", report_id=report_id,
                      reason=f"every supporting report was retracted ({reason})", before=snapshot(before),
                      view=dataclasses.replace(before, status=ListingStatus.LIFTED))
        return
    # A report accepted before ends were recorded counts with the listing's end (never shorter than known).
    listing.listed_until = max(ends or listing.listed_until for ends in remaining)
    kind = "listing.shortened" if listing.listed_until < before.listed_until else "listing.corrected"
    record_change(session, listing, kind, at=now, actor="registry", report_id=report_id,
                  reason=f"report {report_id} no longer supports it ({reason})", before=snapshot(before))


def record_change(
    session: Session, listing: ListingRow, kind: str, *, at: datetime, actor: str, reason: str, report_id: str | None = None,
    view: Listing | None = None, **detail: Any,
) -> Listing:
    """Record a `listing.*` event with the listing as it stands right after the change.

    The changes feed replays these snapshots, so a change shows the listing as it was
    then (status, dates, severity, categories, platforms, reports), not as it is today.
    `view` is that listing when the caller knows it already (a listing one report created).
    """
    if view is None:
        session.flush()
        view = listing_view(session, listing, at)
    events.record(session, at=at, actor=actor, kind=kind, report_id=report_id, subject_id=listing.subject_id,
                  listing_id=listing.id, reason=reason, **detail, **snapshot(view))
    return view


def snapshot(listing: Listing) -> dict[str, Any]:
    """A listing's state as an event records it (JSON): what the changes feed shows for that event."""
    return {
        "status": listing.status.value,
        "listed_from": listing.listed_from.isoformat(),
        "listed_until": listing.listed_until.isoformat(),
        "severity": listing.severity.value,
        "categories": [c.value for c in listing.categories],
        "roles": [r.value for r in listing.roles],
        "reporting_platforms": listing.reporting_platforms,
        "report_ids": list(listing.report_ids),
    }


def _submitted(session: Session, report_id: str, verb: str) -> ReportRow:
    report = session.get(ReportRow, report_id)
    if report is None:
        raise NotFound(f"no report {quoted(report_id)}")
    if report.status != ReportStatus.SUBMITTED.value:
        raise FailedPrecondition(
            f"report {report_id} is {report.status}; only SUBMITTED reports can be {verb}"
        )
    return report


def _current_listing(session: Session, subject_id: int, now: datetime) -> ListingRow | None:
    return session.scalar(
        select(ListingRow)
        .where(
            ListingRow.subject_id == subject_id,
            ListingRow.status.in_([ListingStatus.ACTIVE.value, ListingStatus.PENDING_NOTICE.value]),
            ListingRow.listed_until > now,
        )
        .order_by(ListingRow.listed_until.desc())
        .limit(1)
    )


def _decide(report: ReportRow, status: ReportStatus, actor: str, reason: str, now: datetime) -> None:
    report.status = status.value
    report.decided_at = now
    report.decided_by = actor
    report.decision_reason = reason


def accept_with_dates(
    session: Session, report_id: str, *, listed_from: datetime, listed_until: datetime, reason: str, actor: str, now: datetime
) -> ListingRow:
    """Accept a submitted report with the dates of a punishment decided before (an imported list).

    Kept apart from `ListingStore.accept`, which computes the dates from now and a term:
    the subject's current listing is extended to `listed_until` as any accepted report
    extends it; without one, a listing is created ACTIVE from `listed_from` (no notice
    window: the punishment was decided and in force before the import).
    """
    report = _submitted(session, report_id, "accepted")
    listing = _current_listing(session, report.subject_id, now)
    if listing is None:
        listing = ListingRow(subject_id=report.subject_id, status=ListingStatus.ACTIVE.value, listed_from=listed_from,
                             listed_until=listed_until, created_at=now, updated_at=now)
        session.add(listing)
        session.flush()
        kind = "listing.created"
    else:
        listing.listed_until = max(listing.listed_until, listed_until)
        listing.updated_at = now
        kind = "listing.extended"
    _decide(report, ReportStatus.ACCEPTED, actor, reason, now)
    report.listing_id = listing.id
    report.term_ends_at = listed_until  # the end this report gives its listing, as `accept` records it
    events.record(session, at=now, actor=actor, kind="report.accepted", report_id=report_id, status=ReportStatus.ACCEPTED.value, subject_id=report.subject_id,
                  listing_id=listing.id, reason=reason, imported=True, listed_from=listed_from.isoformat(),
                  term_ends_at=listed_until.isoformat())
    # Most imported rows are people listed once: their listing is this report alone, no query needed.
    alone = None if kind == "listing.extended" else Listing(
        listing_id=listing_ref(listing.id), subject_id=subject_ref(listing.subject_id),
        status=effective_status(listing.status, listing.listed_from, listing.listed_until, now),
        roles=(Role(report.role),), categories=(Category(report.category),), severity=Severity(report.severity),
        listed_from=listing.listed_from, listed_until=listing.listed_until, reporting_platforms=1, report_ids=(report_id,),
    )
    record_change(session, listing, kind, at=now, actor=actor, reason=reason, report_id=report_id, view=alone)
    return listing
