"""Records listings whose term has ended, in the background of a serving registry."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from registry.store.listings import ListingStore

log = logging.getLogger("jpr.expiry")


class ExpiryRecorder:
    """Every `interval` seconds, write the EXPIRED status and event of listings past their end.

    Lookups do not depend on it: a listing past its end stops denying at once.
    """

    def __init__(self, listings: ListingStore, clock: Callable[[], datetime], interval: float) -> None:
        self._listings = listings
        self._clock = clock
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jpr-expiry", daemon=True)
        self._thread.start()

    def record_now(self) -> int:
        count = self._listings.record_expiries(now=self._clock())
        if count:
            log.info("recorded %d expired listing(s)", count)
        return count

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.record_now()
            except Exception:  # the next round tries again; the cause is in the log
                log.exception("recording expired listings failed")
