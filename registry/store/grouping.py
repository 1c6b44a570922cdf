"""Group commit: the writes that arrive while one transaction commits share the next one.

Each commit costs a flush to disk (SQLite's WAL under `synchronous=FULL`, PostgreSQL's
WAL), a transaction's begin, and the read view's catch-up after it. One writer thread
takes every write queued while the previous group was committing and runs them, in
the order they came, in one transaction: the cost of the commit is shared, and no
call waits for a timer (a lone write goes at once).

Each caller is answered only after its group committed, so an acknowledged write
is as durable as one committed alone, and only after the read view caught up with
it (the database's after-write listeners). Groups that queued while the one before
committed are committed first and caught up with together: under load one catch-up
serves several commits. A write refused with a `RegistryError` is
refused alone: the group runs again with each write in a savepoint of its own (the
rare case, as in ImportReports). After any other failure each write of the group
runs again in a transaction of its own, so that it fails only its own caller.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from registry.domain.errors import DeadlineExceeded, RegistryError
from registry.store.database import Database, current_deadline, deadline

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_GROUP = 64  # writes per transaction: bounds the time one group holds the write lock


@dataclass(eq=False)
class _Write(Generic[T]):
    work: Callable[[Session], T]
    ends: float | None  # the caller's deadline (time.monotonic()), None: none
    done: Future[T] = field(default_factory=Future)


class GroupWriter:
    def __init__(self, db: Database, *, max_group: int = MAX_GROUP) -> None:
        self._db = db
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="jpr-group-commit", daemon=True)
        self._closed = False
        self._thread.start()
        db.on_dispose(self.close)

    def write(self, work: Callable[[Session], T]) -> T:
        """`Database.write(work)`, sharing the transaction with writes queued at the same time.

        `work` must not depend on a deadline of its own context (the group's is the latest of
        its callers'), and must be safe to run again (conflicts and refusals re-run the group).
        """
        if self._closed:
            return self._db.write(work)
        pending: _Write[T] = _Write(work, current_deadline())
        self._queue.put(pending)
        return pending.done.result()

    def close(self) -> None:
        """Finish the writes queued so far, then stop; later writes run on their caller's thread."""
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        running = True
        while running and (first := self._queue.get()) is not None:
            running = self._write_groups(first)

    def _write_groups(self, first: _Write[Any]) -> bool:
        """Commit `first`'s group, then each group that queued while the one before committed (up to
        `max_group` writes in all), then tell the database's after-write listeners once, then answer
        every caller of them. The read view's catch-up after a commit (about a third of a report's
        cost) is paid once for them all, and a caller is still answered only after its own commit
        was caught up with. No further group is committed once a committed caller's deadline would
        pass during it (judged by the last commit's time). False: the writer was closed meanwhile."""
        answered: list[tuple[_Write[Any], tuple[bool, Any]]] = []
        group, running = self._take(first, self._max_group)
        try:
            while True:
                began = time.monotonic()
                answered.extend(self._commit(group))
                took = time.monotonic() - began
                ends = [w.ends for w, (ok, _) in answered if ok and w.ends is not None]
                if not running or len(answered) >= self._max_group or (ends and time.monotonic() + took >= min(ends)):
                    break
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    running = False
                    break
                group, running = self._take(following, self._max_group - len(answered))
            if any(ok for _, (ok, _) in answered):
                self._db.tell_written()
        except Exception:  # a listener's fault (the view's catch-up logs its own): the writes committed all the same
            log.exception("an after-write listener failed")
        finally:  # whatever happened, no caller is left waiting
            for w, (ok, value) in answered:
                if ok:
                    w.done.set_result(value)
                else:
                    w.done.set_exception(value)
        return running

    def _take(self, first: _Write[Any], limit: int) -> tuple[list[_Write[Any]], bool]:
        """`first` and the writes queued behind it, `limit` in all at most; and False if the writer was closed."""
        group = [first]
        while len(group) < limit:
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                break
            if queued is None:
                return group, False
            group.append(queued)
        return group, True

    def _commit(self, group: list[_Write[Any]]) -> list[tuple[_Write[Any], tuple[bool, Any]]]:
        live = [w for w in group if not _expired(w)]
        if not live:
            return []
        ends = None if any(w.ends is None for w in live) else max(w.ends for w in live)  # type: ignore[type-var]
        try:
            with deadline(None if ends is None else ends - time.monotonic()):
                outcomes = self._write_all(live)
        except BaseException as error:  # every caller hears why its write did not commit
            return [(w, (False, error)) for w in live]
        return list(zip(live, outcomes, strict=True))

    def _write_all(self, live: list[_Write[Any]]) -> list[tuple[bool, Any]]:
        if len(live) == 1:
            return [self._by_itself(live[0])]
        try:  # nearly always: every write goes in, without a savepoint each
            return self._db.write(lambda session: [(True, w.work(session)) for w in live], tell=False)
        except RegistryError:
            return self._db.write(lambda session: [_alone(session, w) for w in live], tell=False)
        except Exception:  # one write's fault must not fail the others: each in a transaction of its own
            return [self._by_itself(w) for w in live]

    def _by_itself(self, pending: _Write[Any]) -> tuple[bool, Any]:
        try:
            return True, self._db.write(pending.work, tell=False)
        except Exception as error:
            return False, error

    def queued(self) -> int:
        """Writes waiting for a transaction (not counting the group being committed)."""
        return self._queue.qsize()


def _alone(session: Session, pending: _Write[Any]) -> tuple[bool, Any]:
    try:
        with session.begin_nested():
            return True, pending.work(session)
    except RegistryError as error:
        return False, error


def _expired(pending: _Write[Any]) -> bool:
    """A call whose deadline passed while it waited for its group: refused, nothing written."""
    if pending.ends is None or time.monotonic() < pending.ends:
        return False
    pending.done.set_exception(
        DeadlineExceeded("the call's deadline passed; the registry abandoned its work on it (nothing was written)")
    )
    return True
