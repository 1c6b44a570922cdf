"""The one place that decides an entry-audit verdict.

DENY   an ACTIVE listing matched through a strong identifier.
REVIEW an ACTIVE listing matched through weak identifiers only, a report
       under review, or a listing in its notice window.
CLEAR  nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from registry.domain.model import (
    Category,
    IdentifierType,
    LookupResult,
    Match,
    MatchReason,
    Role,
    Severity,
    Token,
    Verdict,
)


@dataclass(frozen=True)
class Allegation:
    """What the reports behind a listing (or under review) say, without who said it."""

    roles: frozenset[Role]
    categories: frozenset[Category]
    severity: Severity
    platforms: int


@dataclass(frozen=True)
class SubjectState:
    """What the registry knows about one subject at lookup time."""

    subject_id: str
    listed: Allegation | None = None
    listed_from: datetime | None = None
    listed_until: datetime | None = None
    in_notice: bool = False
    under_review: Allegation | None = None


def decide(
    applicant: Sequence[Token],
    hits: Mapping[bytes, Sequence[int]],
    states: Mapping[int, SubjectState],
) -> LookupResult:
    """The verdict for one applicant, given which subjects each of its tokens hit."""
    matched: dict[int, list[IdentifierType]] = {}
    for token in applicant:
        for subject in hits.get(token.value, ()):
            types = matched.setdefault(subject, [])
            if token.type not in types:
                types.append(token.type)
    matches = [m for s, types in sorted(matched.items()) if (m := _match(states.get(s), types)) is not None]
    verdict = max((_verdict_of(m) for m in matches), key=lambda v: v.value, default=Verdict.CLEAR)
    return LookupResult(verdict=verdict, matches=tuple(matches))


def _verdict_of(match: Match) -> Verdict:
    if match.reason is MatchReason.ACTIVE_LISTING and match.strong_match:
        return Verdict.DENY
    return Verdict.REVIEW


def _match(state: SubjectState | None, types: list[IdentifierType]) -> Match | None:
    if state is None:
        return None
    if state.listed is not None:
        reason = MatchReason.NOTICE_PERIOD if state.in_notice else MatchReason.ACTIVE_LISTING
        allegation = state.listed
    elif state.under_review is not None:
        reason, allegation = MatchReason.REPORT_UNDER_REVIEW, state.under_review
    else:
        return None
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
    )
