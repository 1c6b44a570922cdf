"""The access audit's judgement, figure by figure: where each flag starts and when a match rate cannot be judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry.domain.audit import AccessFlag, AccessTotals, Thresholds, audit, hour_window
from registry.domain.errors import InvalidArgument

UNTIL = datetime(2026, 11, 28, tzinfo=UTC)
WEEK = UNTIL - timedelta(days=7)


def flags(totals: list[AccessTotals], declared: dict[str, int | None], thresholds: Thresholds = Thresholds()) -> dict[str, list[AccessFlag]]:
    result = audit(totals, declared, WEEK, UNTIL, thresholds)
    return {m.totals.member: [flag for flag, _ in m.flags] for m in result.members}


def test_volume_is_flagged_only_above_the_factor_times_the_declared_volume() -> None:
    declared: dict[str, int | None] = {"a": 100}
    assert flags([AccessTotals("a", applicants=2100)], declared)["a"] == []  # 3 x 100 x 7 days exactly
    assert flags([AccessTotals("a", applicants=2101)], declared)["a"] == [AccessFlag.VOLUME_OUT_OF_LINE]
    assert flags([AccessTotals("a", applicants=2101)], declared, Thresholds(volume_factor=4))["a"] == []


def test_a_member_without_declared_volume_is_flagged_once_it_looks_up() -> None:
    declared: dict[str, int | None] = {"quiet": None, "busy": None}
    assert flags([AccessTotals("busy", applicants=1)], declared) == {"busy": [AccessFlag.NO_DECLARED_VOLUME], "quiet": []}


def test_misses_are_judged_against_other_members_match_rate() -> None:
    declared: dict[str, int | None] = {"peer": 10_000, "guesser": 10_000}
    peer = AccessTotals("peer", applicants=10_000, matched=100)  # 1 %
    # 5,000 applicants at 1 % would give 50 matches; 4 is below 50 / 10.
    assert flags([peer, AccessTotals("guesser", applicants=5_000, matched=4)], declared)["guesser"] == [AccessFlag.ENUMERATION_LIKE_MISSES]
    assert flags([peer, AccessTotals("guesser", applicants=5_000, matched=5)], declared)["guesser"] == []
    # Too few applicants, or too few expected matches, and the rate is not judged.
    assert flags([peer, AccessTotals("guesser", applicants=999, matched=0)], declared)["guesser"] == []
    assert flags([AccessTotals("peer", applicants=10_000, matched=1), AccessTotals("guesser", applicants=5_000)], declared)["guesser"] == []
    # The member's own misses never lower the rate it is judged against.
    result = audit([peer, AccessTotals("guesser", applicants=1_000_000)], declared, WEEK, UNTIL, Thresholds())
    assert {m.totals.member: m.peer_match_rate for m in result.members}["guesser"] == pytest.approx(0.01)


def test_flagged_members_come_first_then_the_busiest() -> None:
    declared: dict[str, int | None] = {"a": 1_000, "b": 1_000, "c": 1}
    result = audit([AccessTotals("a", applicants=10), AccessTotals("b", applicants=500), AccessTotals("c", applicants=50)],
                   declared, WEEK, UNTIL, Thresholds())
    assert [m.totals.member for m in result.members] == ["c", "b", "a"]


def test_factors_of_one_or_less_are_refused() -> None:
    for bad in ({"volume_factor": 1.0}, {"miss_factor": 0.5}):
        with pytest.raises(InvalidArgument, match="above 1"):
            Thresholds(**bad)  # type: ignore[arg-type]


def test_the_window_widens_to_whole_hours() -> None:
    at = datetime(2026, 11, 28, 10, 10, tzinfo=UTC)
    assert hour_window(at, at + timedelta(minutes=40)) == (at.replace(minute=0), at.replace(hour=11, minute=0))
    exact = datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert hour_window(exact - timedelta(days=7), exact) == (exact - timedelta(days=7), exact)


def test_a_factor_that_is_not_a_number_is_refused_and_a_zero_volume_is_undeclared() -> None:
    with pytest.raises(InvalidArgument, match="volume_factor: nan"):
        Thresholds(volume_factor=float("nan"))
    assert flags([AccessTotals("a", applicants=5)], {"a": 0})["a"] == [AccessFlag.NO_DECLARED_VOLUME]
