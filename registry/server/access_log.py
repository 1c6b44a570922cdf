"""The access log: one record per call, written off the request threads.

Every call to a guessable oracle must be accounted for, so this sits on the
hot path. A request thread only appends a tuple (atomic under the GIL). A
writer thread hands each call to the `jpr.access` logger as a record of its
own every fraction of a second, stamped with the time the call completed, so
that formatting (text or JSON) never runs on a request thread. A record holds
the method, the caller, its certificate fingerprint, the status, the duration,
the call's element counts (`items`: elements tokenized or applicants looked
up; `matched`: applicants that matched) and the request id the caller was sent
(`x-request-id`), both in its message and as fields of their own
(docs/operations.md lists them). A stream has two: one when it opens
(`event` "open") and one when it ends ("end", with its final status and
duration).

The writer also adds members' calls to the access counts (per member, hour and
method) once a second, which `jpr admin audit access` reads; a refused call
adds to `calls` and `refused`, never to the elements, and a stream counts once,
when it opens. Tokens and identifiers never appear in either.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from registry.crypto import pki
from registry.domain.audit import LOOKUP_METHODS, TOKENIZE_METHOD
from registry.store.access import Count
from registry.store.database import log_background_failure

log = logging.getLogger("jpr.access")

# What a record says a call was: a unary call, or a stream's opening or end.
CALL, OPEN, END = "call", "open", "end"
# when, method, role, name, certificate SHA-256, status, milliseconds, items, matched, request id, event
Entry = tuple[datetime, str, str, str, str, str, float, int, int, str, str]
CountKey = tuple[str, datetime, str]  # member, hour, method
# The text of a record; its values are also the record's fields (`extra`), which a JSON log carries as keys.
MESSAGE = "%s%s %s:%s cert=%s %s %.1fms items=%d matched=%d request_id=%s"
_EVENT_WORDS = {CALL: "", OPEN: " open", END: " end"}


def element_counts(method: str, request: Any, response: Any) -> tuple[int, int]:
    """(items, matched) of a call: what it asked for, and for lookups how many applicants matched."""
    counter = _COUNTERS.get(method)
    return counter(request, response) if counter is not None else (0, 0)


def _tokenize(request: Any, response: Any) -> tuple[int, int]:
    return len(request.blinded_elements), 0


def _lookup(request: Any, response: Any) -> tuple[int, int]:
    return 1, int(response is not None and len(response.matches) > 0)


def _lookup_batch(request: Any, response: Any) -> tuple[int, int]:
    matched = sum(1 for result in response.results if result.matches) if response is not None else 0
    return len(request.applicants), matched


_COUNTERS: dict[str, Callable[[Any, Any], tuple[int, int]]] = {
    TOKENIZE_METHOD: _tokenize, LOOKUP_METHODS[0]: _lookup, LOOKUP_METHODS[1]: _lookup_batch,
}


class AccessLog:
    def __init__(
        self,
        add_counts: Callable[[list[Count]], None],
        clock: Callable[[], datetime],
        *,
        interval: float = 0.2,
        count_interval: float = 1.0,
    ) -> None:
        self._add_counts = add_counts
        self._clock = clock
        self._entries: collections.deque[Entry] = collections.deque()
        self._counts: dict[CountKey, list[int]] = {}  # calls, refused, items, matched; under _lock
        self._lock = threading.Lock()  # one batch of lines, and the counts, at a time
        self._write_lock = threading.Lock()  # one counts write at a time
        self._stopped = threading.Event()
        # Two threads, so that a slow database (a lock wait) never holds up the log lines.
        self._threads = [
            threading.Thread(target=self._every, args=(interval, self.flush_lines), name="jpr-access-log", daemon=True),
            threading.Thread(target=self._every, args=(count_interval, self.write_counts), name="jpr-access-counts", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def record(
        self, method: str, role: str, name: str, certificate_sha256: str, status: str, milliseconds: float, items: int, matched: int,
        request_id: str = "", event: str = CALL,
    ) -> None:
        self._entries.append(
            (self._clock(), method, role, name, certificate_sha256, status, milliseconds, items, matched, request_id, event)
        )

    def flush(self) -> None:
        """Log what was recorded and add it to the stored access counts now."""
        self.flush_lines()
        self.write_counts()

    def flush_lines(self) -> None:
        with self._lock:
            entries = []
            while self._entries:
                entries.append(self._entries.popleft())
            if entries:
                if log.isEnabledFor(logging.INFO):
                    records = RecordMaker()
                    for entry in entries:
                        log.handle(records.of(entry))
                    _flush_handlers(log)
                self._fold(entries)

    def write_counts(self) -> None:
        """Add the folded counts to the database. At least once: kept for the next round when
        the write fails (a commit whose acknowledgement was lost may add them twice)."""
        with self._write_lock:
            with self._lock:
                pending, self._counts = self._counts, {}
            if not pending:
                return
            try:
                self._add_counts([(m, h, method, c, r, i, x) for (m, h, method), (c, r, i, x) in pending.items()])
            except Exception:
                with self._lock:
                    for key, values in pending.items():
                        self._fold_values(key, values)
                raise

    def close(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(timeout=5)
        try:
            self.flush()
        except Exception:  # shutting down: the lines are logged; only this replica's last second of counts is lost
            log_background_failure(log, "adding the last access counts failed")

    def _fold(self, entries: list[Entry]) -> None:
        """Members' calls only; a refused call counts as a call and a refusal, never its elements;
        a stream counts when it opens (or is refused), not again when it ends."""
        for when, method, role, name, _sha, status, _ms, items, matched, _id, event in entries:
            if role != pki.ROLE_MEMBER or event == END:
                continue
            answered = status == "OK"
            key = (name, when.replace(minute=0, second=0, microsecond=0), method)
            self._fold_values(key, (1, int(not answered), items if answered else 0, matched if answered else 0))

    def _fold_values(self, key: CountKey, values: tuple[int, int, int, int] | list[int]) -> None:
        held = self._counts.setdefault(key, [0, 0, 0, 0])
        for i, value in enumerate(values):
            held[i] += value

    def _every(self, seconds: float, work: Callable[[], None]) -> None:
        while not self._stopped.wait(seconds):
            try:
                work()
            except Exception:  # counts are kept and added by the next round; the cause is in the log
                log_background_failure(log, "the access log's %s failed", work.__name__)


class RecordMaker:
    """Calls' records, each a copy of one made the usual way with the call's own values put in.

    `Logger.makeRecord` works out the same dozen attributes (thread, process, source file,
    level name...) for every record; here they are worked out once per batch, in the thread
    that logs it."""

    def __init__(self) -> None:
        template = log.makeRecord(log.name, logging.INFO, __file__, 0, MESSAGE, (), None)
        self._kind = type(template)
        self._template = template.__dict__
        self._relative_ms = template.relativeCreated - template.created * 1000

    def of(self, entry: Entry) -> logging.LogRecord:
        """One call's record, dated when the call completed (not when this thread got to it)."""
        when, method, role, name, sha256, status, milliseconds, items, matched, request_id, event = entry
        record = self._kind.__new__(self._kind)
        fields = record.__dict__
        fields.update(self._template)
        created = when.timestamp()
        duration = round(milliseconds, 3)  # the text's figure is the JSON field's, rounded: the two never disagree
        fields.update(
            # A caller without a JPR certificate has no role, name or fingerprint: "-" in the text, null in JSON.
            args=(method, _EVENT_WORDS[event], role or "-", name or "-", sha256 or "-", status, duration, items, matched, request_id),
            created=created, msecs=(created - int(created)) * 1000, relativeCreated=self._relative_ms + created * 1000,
            event=event, method=method, role=role or None, caller=name or None, certificate_sha256=sha256 or None,
            status=status, duration_ms=duration, items=items, matched=matched, request_id=request_id or None,
        )
        return record


def _flush_handlers(logger: logging.Logger) -> None:
    """Flush every handler a record of `logger` goes to (as `Logger.callHandlers` walks them): a batching
    handler (registry/server/log_format.py) writes the batch now."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            handler.flush()
        current = current.parent if current.propagate else None
