"""Who looks up how much: each member's call volumes over a window, and what looks out of line.

Every lookup is an oracle on the shared list, so the association watches how
members use it. Two signals, each with its figures so a reviewer can judge:

- volume: a member looking up many more applicants than it says it onboards
  (`onboarding_per_day`, declared to the association) may be harvesting;
- misses: applicants that match far less often than other members' do are not
  the stream of real sign-ups every platform sees; guessed identifiers
  (enumeration) almost never match.

Neither is proof. A flag is a reason for the association to ask, never an
automatic sanction.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from registry.domain.errors import InvalidArgument

TOKENIZE_METHOD = "/jpr.v1.Registry/Tokenize"
LOOKUP_METHODS = ("/jpr.v1.Registry/Lookup", "/jpr.v1.Registry/LookupBatch")


class AccessFlag(enum.Enum):
    VOLUME_OUT_OF_LINE = "VOLUME_OUT_OF_LINE"
    ENUMERATION_LIKE_MISSES = "ENUMERATION_LIKE_MISSES"
    NO_DECLARED_VOLUME = "NO_DECLARED_VOLUME"


@dataclass(frozen=True)
class AccessTotals:
    """One member's calls over a window, summed from the access counts."""

    member: str
    calls: int = 0
    refused: int = 0
    lookup_calls: int = 0
    applicants: int = 0
    matched: int = 0
    tokenized: int = 0


@dataclass(frozen=True)
class Thresholds:
    volume_factor: float = 3.0  # applicants above this many times the declared volume
    miss_factor: float = 10.0  # a match rate this many times below other members'
    min_applicants: int = 1000  # fewer applicants are too few to judge a match rate

    def __post_init__(self) -> None:
        for name in ("volume_factor", "miss_factor"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 1:
                raise InvalidArgument(f"{name}: {value}; it must be a number above 1 (a factor of 1 flags ordinary use)")


@dataclass(frozen=True)
class MemberAccess:
    totals: AccessTotals
    onboarding_per_day: int | None
    match_rate: float
    peer_match_rate: float
    flags: tuple[tuple[AccessFlag, str], ...]  # each flag with one sentence giving its figures


@dataclass(frozen=True)
class AccessAudit:
    since: datetime
    until: datetime
    members: tuple[MemberAccess, ...]  # flagged first, then by applicants looked up


def hour_window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The window widened to whole hours, as the counts are kept: `since` down, `until` up."""
    start = since.replace(minute=0, second=0, microsecond=0)
    end = until.replace(minute=0, second=0, microsecond=0)
    return start, end if end == until else end + timedelta(hours=1)


def audit(
    totals: Iterable[AccessTotals], declared: Mapping[str, int | None], since: datetime, until: datetime, thresholds: Thresholds
) -> AccessAudit:
    """Every member in `declared` (and any other that made calls), judged against the others.

    `totals` cover [since, until), which `hour_window` has aligned to the counts' hours.
    """
    by_member = {name: AccessTotals(name) for name in declared}
    by_member.update({t.member: t for t in totals})
    all_applicants = sum(t.applicants for t in by_member.values())
    all_matched = sum(t.matched for t in by_member.values())
    days = (until - since).total_seconds() / 86_400
    judged = []
    for name, each in by_member.items():
        peers_applicants = all_applicants - each.applicants
        peer_rate = (all_matched - each.matched) / peers_applicants if peers_applicants else 0.0
        per_day = declared.get(name)
        judged.append(
            MemberAccess(
                totals=each,
                onboarding_per_day=per_day,
                match_rate=each.matched / each.applicants if each.applicants else 0.0,
                peer_match_rate=peer_rate,
                flags=_flags(each, per_day, peer_rate, days, thresholds),
            )
        )
    judged.sort(key=lambda m: (not m.flags, -m.totals.applicants, m.totals.member))
    return AccessAudit(since=since, until=until, members=tuple(judged))


def _flags(
    totals: AccessTotals, per_day: int | None, peer_rate: float, days: float, thresholds: Thresholds
) -> tuple[tuple[AccessFlag, str], ...]:
    flags = []
    if per_day is None or per_day <= 0:
        if totals.applicants:
            flags.append((AccessFlag.NO_DECLARED_VOLUME, (
                f"looked up {totals.applicants:,} applicants but has no onboarding volume on record; "
                "set it with `jpr admin members volume`"
            )))
    else:
        allowed = thresholds.volume_factor * per_day * days
        if totals.applicants > allowed:
            flags.append((AccessFlag.VOLUME_OUT_OF_LINE, (
                f"looked up {totals.applicants:,} applicants in {days:.1f} days against {per_day:,} onboarded a day "
                f"declared ({totals.applicants / (per_day * days):.1f} times the declared volume)"
            )))
    expected = totals.applicants * peer_rate
    # Judged only with enough applicants, and enough expected matches that a shortfall means something.
    if totals.applicants >= thresholds.min_applicants and expected >= thresholds.miss_factor:
        if totals.matched < expected / thresholds.miss_factor:
            flags.append((AccessFlag.ENUMERATION_LIKE_MISSES, (
                f"{totals.matched:,} of {totals.applicants:,} applicants matched; at other members' rate "
                f"({peer_rate:.2%}) about {expected:,.0f} would have: identifiers that are not real applicants "
                "look like enumeration"
            )))
    return tuple(flags)
