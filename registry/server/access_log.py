"""The access log: one line per call, written off the request threads.

Every call to a guessable oracle must be logged, so this sits on the hot
path. A request thread only appends a tuple (atomic under the GIL); a writer
thread formats a batch every fraction of a second and hands it to the
`jpr.access` logger as one record. Tokens and identifiers never appear: only
the method, the caller, the status and the duration.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from datetime import UTC, datetime

log = logging.getLogger("jpr.access")

Entry = tuple[float, str, str, str, str, float]  # when, method, role, name, status, milliseconds


class AccessLog:
    def __init__(self, interval: float = 0.2) -> None:
        self._entries: collections.deque[Entry] = collections.deque()
        self._interval = interval
        self._stopped = threading.Event()
        self._writer = threading.Thread(target=self._run, name="jpr-access-log", daemon=True)
        self._writer.start()

    def record(self, method: str, role: str, name: str, status: str, milliseconds: float) -> None:
        self._entries.append((time.time(), method, role, name, status, milliseconds))

    def flush(self) -> None:
        entries = []
        while self._entries:
            entries.append(self._entries.popleft())
        if entries:
            # One record per batch: a header line, then one self-contained line per call.
            log.info("%d calls\n%s", len(entries), "\n".join(_line(entry) for entry in entries))

    def close(self) -> None:
        self._stopped.set()
        self._writer.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.flush()


def _line(entry: Entry) -> str:
    when, method, role, name, status, milliseconds = entry
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    return f"{stamp} {method} {role}:{name} {status} {milliseconds:.1f}ms"
