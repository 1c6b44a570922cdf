"""Member feedback: after its own entry audit, a member says whether a listing it matched holds up."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime

from jpr_client.model import Opinion, OpinionReceipt
from registry.domain.errors import InvalidArgument
from registry.domain.model import Caller
from registry.store.opinions import OpinionStore
from registry.store.refs import parse_ref

log = logging.getLogger("jpr.feedback")

MAX_OPINION_REASON = 500


class MatchRecorder:
    """Which member's lookups matched which subject: noted on the request thread, written once a second.

    The hot path only appends to a list; one thread folds the notes and writes
    them in one transaction. `flush` writes at once (an opinion needs the
    caller's own match on record).
    """

    def __init__(self, store: OpinionStore, clock: Callable[[], datetime], interval: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._notes: deque[tuple[str, Iterable[str], datetime]] = deque()  # appended by request threads
        self._lock = threading.Lock()  # one flush at a time
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jpr-matches", daemon=True)
        self._thread.start()

    def note(self, member: str, subject_refs: Iterable[str]) -> None:
        self._notes.append((member, subject_refs, self._clock()))  # deque.append: atomic, no lock on the hot path

    def flush(self) -> None:
        with self._lock:
            notes = []
            while self._notes:
                notes.append(self._notes.popleft())
            folded: dict[tuple[str, int], tuple[datetime, datetime, int]] = {}
            for member, refs, at in notes:
                for ref in refs:
                    key = (member, parse_ref("S", ref))
                    first, last, count = folded.get(key, (at, at, 0))
                    folded[key] = (min(first, at), max(last, at), count + 1)
            try:
                self._store.record_matches((m, s, first, last, n) for (m, s), (first, last, n) in folded.items())
            except Exception:
                self._notes.extendleft(reversed(notes))  # kept for the next round, oldest first
                raise

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:  # shutting down: what is lost is a lookup's trace, never a decision
            log.exception("writing the last lookup matches failed")

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.flush()
            except Exception:  # kept, and written by the next round; the cause is in the log
                log.exception("recording lookup matches failed")


class FeedbackService:
    def __init__(self, store: OpinionStore, matches: MatchRecorder, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._matches = matches
        self._clock = clock

    def record(self, member: Caller, listing_id: str, opinion: Opinion, reason: str) -> OpinionReceipt:
        if opinion is Opinion.DISPUTED and not reason.strip():
            raise InvalidArgument("reason is required for DISPUTED: say what your own audit found, the association reviews it")
        if len(reason) > MAX_OPINION_REASON:
            raise InvalidArgument(f"reason: {len(reason)} characters, at most {MAX_OPINION_REASON} are allowed")
        self._matches.flush()  # this member's latest lookups count
        return self._store.record(member.name, listing_id, opinion, reason, now=self._clock())
