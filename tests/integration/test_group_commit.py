"""Reports submitted together share a transaction, and each caller still hears only about its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from registry.domain.errors import AlreadyExists, DeadlineExceeded
from registry.store import events
from registry.store.database import Database, deadline
from registry.store.grouping import GroupWriter
from registry.store.models import EventRow

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def recording(kind: str, then: Callable[[], None] = lambda: None) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        events.record(session, at=NOW, actor="test", kind=kind)
        then()
        return kind

    return work


def kinds(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(select(EventRow.kind).order_by(EventRow.seq)).scalars())


def in_thread(call: Callable[[], Any]) -> Future[Any]:
    done: Future[Any] = Future()

    def run() -> None:
        try:
            done.set_result(call())
        except BaseException as error:
            done.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    return done


def held_first_write(writer: GroupWriter) -> tuple[Future[Any], threading.Event]:
    """A first write inside its transaction, held there until the returned event is set."""
    started, release = threading.Event(), threading.Event()
    first = in_thread(lambda: writer.write(recording("first", lambda: (started.set(), release.wait(10)) and None)))
    assert started.wait(10)
    return first, release


def queued_behind_a_commit(db: Database, writer: GroupWriter, calls: list[Callable[[], Any]]) -> list[Future[Any]]:
    """Start `calls` while a first write is held in its transaction; release it once all of them wait."""
    first, release = held_first_write(writer)
    futures = [in_thread(call) for call in calls]
    ends = time.monotonic() + 10
    while writer.queued() < len(calls) and time.monotonic() < ends:
        time.sleep(0.005)
    release.set()
    assert first.result(10) == "first"
    return futures


def test_writes_queued_while_a_commit_is_under_way_share_the_next_transaction(db: Database) -> None:
    commits, told = [], []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    db.after_write(lambda: told.append(1))
    writer = GroupWriter(db)
    futures = queued_behind_a_commit(db, writer, [lambda k=k: writer.write(recording(k)) for k in ("a", "b", "c")])
    assert sorted(f.result(10) for f in futures) == ["a", "b", "c"]
    assert len(commits) == 2, "the first write alone, then the three that queued behind it in one transaction"
    assert len(told) == 1, "the two commits, one after the other, are caught up with once"
    assert sorted(kinds(db)) == ["a", "b", "c", "first"]


def test_each_caller_is_answered_only_after_its_commit_was_caught_up_with(db: Database) -> None:
    """The read view's catch-up is an after-write listener: what a caller hears of, its process already shows."""
    caught_up: list[set[str]] = []

    def catch_up() -> None:
        time.sleep(0.2)  # a caller answered before this ends would look before the append
        caught_up.append(set(kinds(db)))

    db.after_write(catch_up)
    writer = GroupWriter(db)

    def write_and_look(kind: str) -> bool:
        writer.write(recording(kind))
        return any(kind in seen for seen in caught_up)

    futures = queued_behind_a_commit(db, writer, [lambda k=k: write_and_look(k) for k in ("a", "b", "c")])
    assert [f.result(10) for f in futures] == [True, True, True]
    assert "first" in caught_up[0]


def test_a_committed_caller_is_not_kept_past_its_deadline_by_the_groups_behind_it(db: Database) -> None:
    """The first write's deadline would pass during another commit: it is answered before that one starts."""
    def held_then_done() -> str:
        with deadline(0.6):  # committed after ~0.4 s: another ~0.4 s commit would take it past its deadline
            return writer.write(recording("first", lambda: time.sleep(0.4)))

    told: list[int] = []
    db.after_write(lambda: told.append(len(kinds(db))))
    writer = GroupWriter(db)
    first = in_thread(held_then_done)
    time.sleep(0.1)
    second = in_thread(lambda: writer.write(recording("second")))
    assert first.result(10) == "first" and second.result(10) == "second"
    assert told == [1, 2], "the first commit was caught up with and answered alone"


@pytest.mark.parametrize(("max_group", "events_when_told"), [(1, [1, 2, 3, 4, 5]), (2, [2, 4, 5]), (3, [3, 5])])
def test_catching_up_waits_for_at_most_max_group_writes(db: Database, max_group: int, events_when_told: list[int]) -> None:
    """Under a load that never lets the queue empty, callers are still answered every `max_group` writes."""
    told: list[int] = []
    db.after_write(lambda: told.append(len(kinds(db))))
    writer = GroupWriter(db, max_group=max_group)
    futures = queued_behind_a_commit(db, writer, [lambda k=k: writer.write(recording(k)) for k in ("a", "b", "c", "d")])
    assert sorted(f.result(10) for f in futures) == ["a", "b", "c", "d"]
    # max_group 2: the first write alone, then a (2 writes: told), then b and c, then d.
    assert told == events_when_told


def test_a_refused_write_in_a_group_is_refused_alone_and_the_others_commit(db: Database) -> None:
    def refuse() -> None:
        raise AlreadyExists("report id taken")

    writer = GroupWriter(db)
    futures = queued_behind_a_commit(db, writer, [
        lambda: writer.write(recording("a")), lambda: writer.write(recording("refused", refuse)), lambda: writer.write(recording("c")),
    ])
    assert futures[0].result(10) == "a" and futures[2].result(10) == "c"
    with pytest.raises(AlreadyExists, match="report id taken"):
        futures[1].result(10)
    assert sorted(kinds(db)) == ["a", "c", "first"], "nothing of the refused write is stored"


def test_a_failing_write_in_a_group_fails_only_its_own_caller(db: Database) -> None:
    def fail() -> None:
        raise RuntimeError("a fault in this write")

    writer = GroupWriter(db)
    futures = queued_behind_a_commit(db, writer, [lambda: writer.write(recording("broken", fail)), lambda: writer.write(recording("b"))])
    with pytest.raises(RuntimeError, match="a fault in this write"):
        futures[0].result(10)
    assert futures[1].result(10) == "b"
    assert sorted(kinds(db)) == ["b", "first"]


def test_a_write_whose_deadline_passed_while_it_waited_is_refused_and_not_stored(db: Database) -> None:
    def late() -> str:
        with deadline(0.01):
            return writer.write(recording("late"))

    writer = GroupWriter(db)
    first, release = held_first_write(writer)
    waiting = in_thread(late)
    while writer.queued() < 1:
        time.sleep(0.005)
    time.sleep(0.05)
    release.set()
    first.result(10)
    with pytest.raises(DeadlineExceeded, match="nothing was written"):
        waiting.result(10)
    assert kinds(db) == ["first"]


def test_writes_after_the_database_is_disposed_of_run_on_their_callers_thread(db: Database, database_url: str) -> None:
    other = Database(database_url)
    writer = GroupWriter(other)
    other.dispose()
    assert writer.write(recording("after")) == "after"
    other.dispose()
    assert kinds(db) == ["after"]
