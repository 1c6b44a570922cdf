"""The event cursor: every committed event applied exactly once, whatever order commits arrive in."""

from __future__ import annotations

from registry.store.view import EventCursor
from tests.conftest import Ticks



def test_events_in_order_advance_the_floor_and_are_returned_once() -> None:
    cursor = EventCursor(0, patience=5, clock=Ticks())
    assert cursor.take([1, 2, 3]) == [1, 2, 3]
    assert cursor.floor == 3
    assert cursor.take([3]) == []


def test_a_gap_holds_the_floor_until_the_late_commit_arrives() -> None:
    ticks = Ticks()
    cursor = EventCursor(0, patience=5, clock=ticks)
    assert cursor.take([1, 3, 4]) == [1, 3, 4]  # 2 is still in flight
    assert cursor.floor == 1  # so the next read starts after 1 and will see 2
    ticks.now += 4
    assert cursor.take([3, 4, 5]) == [5]  # re-read rows are not returned again
    assert cursor.floor == 1
    assert cursor.take([2, 3, 4, 5]) == [2]
    assert cursor.floor == 5


def test_a_gap_older_than_the_patience_is_a_rolled_back_transaction() -> None:
    ticks = Ticks()
    cursor = EventCursor(10, patience=5, clock=ticks)
    cursor.take([11, 13])
    assert cursor.floor == 11
    ticks.now += 5
    assert cursor.take([13]) == []
    assert cursor.floor == 13


def test_rows_at_or_below_the_floor_are_ignored() -> None:
    cursor = EventCursor(10, patience=5, clock=Ticks())
    assert cursor.take([9, 10, 11]) == [11]
