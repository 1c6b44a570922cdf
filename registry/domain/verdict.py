"""The one place that decides an entry-audit verdict.

DENY   an ACTIVE listing matched through a strong identifier.
REVIEW an ACTIVE listing matched through weak identifiers only, a report
       under review, a listing in its notice window, or a listing the flood
       guard quarantined.
CLEAR  nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from jpr_client.model import Category, IdentifierType, LookupResult, Match, MatchReason, Role, Severity, Verdict


@dataclass(frozen=True)
class Allegation:
    """What the reports behind a listing (or under review) say, without who said it."""

    roles: frozenset[Role]
    categories: frozenset[Category]
    severity: Severity
    platforms: int


class Hit(NamedTuple):
    """A token found in a report about `subject`, with the type that report declared.

    A named tuple rather than a dataclass: a lookup builds one per token found (a tuple is
    quicker to make), and the lookup index keeps those of shared tokens (24 B fewer each).
    """

    subject: int
    type: IdentifierType
    listing: int | None  # the listing the report was accepted into; None while under review


@dataclass(frozen=True)
class SubjectState:
    """What the registry knows about one subject at lookup time."""

    subject_id: str
    listed: Allegation | None = None
    active_listings: frozenset[int] = frozenset()
    appeal_pending: bool = False
    quarantined: frozenset[int] = frozenset()  # listings the flood guard holds: REVIEW, not DENY, until an admin decides
    listed_from: datetime | None = None
    listed_until: datetime | None = None
    in_notice: bool = False
    under_review: Allegation | None = None
    listing_ref: str = ""  # the active listing (the latest ending, if a merge left several)
    confirmations: int = 0
    disputes: int = 0


CLEAR = LookupResult(verdict=Verdict.CLEAR, matches=())


def decide(
    applicant: Sequence[bytes],
    hits: Mapping[bytes, Iterable[Hit]],
    states: Mapping[int, SubjectState],
) -> LookupResult:
    """The verdict for one applicant (its token values), given the reports its tokens were found in.

    Types and strength come from the signed reports, never from the caller's
    label; only tokens of reports accepted into a listing tie an applicant to it.
    """
    if hits.keys().isdisjoint(applicant):
        return CLEAR  # most applicants of a batch: not one of their tokens was found
    found: dict[int, list[Hit]] = {}
    for token in applicant:
        for hit in hits.get(token, ()):
            found.setdefault(hit.subject, []).append(hit)
    if not found:
        return CLEAR  # the tokens found held no hit (a caller's mapping may hold empty ones)
    matches = [m for s, subject_hits in sorted(found.items()) if (m := _match(states.get(s), subject_hits)) is not None]
    verdict = max((_verdict_of(m) for m in matches), key=lambda v: v.value, default=Verdict.CLEAR)
    return LookupResult(verdict=verdict, matches=tuple(matches))


def _verdict_of(match: Match) -> Verdict:
    if match.reason is MatchReason.ACTIVE_LISTING and match.strong_match:
        return Verdict.DENY
    return Verdict.REVIEW


def _match(state: SubjectState | None, hits: list[Hit]) -> Match | None:
    if state is None:
        return None
    # Only a report accepted into the listing ties a token to it: an unreviewed
    # merge must not carry an old, expired case's tokens into another listing.
    confirmed = [h for h in hits if h.listing is not None and h.listing in state.active_listings]
    if state.listed is not None and confirmed:
        # Held only when every listing the applicant's tokens confirm is held (after a merge, another may deny).
        held = all(h.listing in state.quarantined for h in confirmed)
        reason = (MatchReason.NOTICE_PERIOD if state.in_notice
                  else MatchReason.QUARANTINED if held else MatchReason.ACTIVE_LISTING)
        allegation, used = state.listed, confirmed
    elif state.under_review is not None:
        reason, allegation, used = MatchReason.REPORT_UNDER_REVIEW, state.under_review, hits
    else:
        return None
    listed = reason is not MatchReason.REPORT_UNDER_REVIEW
    types = {h.type for h in used}
    return Match(
        subject_id=state.subject_id,
        reason=reason,
        strong_match=any(t.strong for t in types),
        matched_types=tuple(sorted(types, key=lambda t: t.value)),
        roles=tuple(sorted(allegation.roles, key=lambda r: r.value)),
        categories=tuple(sorted(allegation.categories, key=lambda c: c.value)),
        severity=allegation.severity,
        listed_from=state.listed_from if state.listed is not None else None,
        listed_until=state.listed_until if state.listed is not None else None,
        reporting_platforms=allegation.platforms,
        appeal_pending=state.appeal_pending and listed,
        listing_id=state.listing_ref if listed else "",
        confirmations=state.confirmations if listed else 0,
        disputes=state.disputes if listed else 0,
    )
