"""Records listings whose term has ended, in the background of a serving registry."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from registry.server.metrics import Metrics
from registry.store.corrections import CorrectionStore
from registry.store.listings import ListingStore
from registry.store.database import log_background_failure

log = logging.getLogger("jpr.expiry")


class ExpiryRecorder:
    """Every `interval` seconds, write the EXPIRED status and event of listings past their end;
    every `retention_every` seconds, unlink the tokens of subjects past their retention period.

    Lookups do not depend on it: a listing past its end stops denying at once.
    """

    def __init__(
        self,
        listings: ListingStore,
        clock: Callable[[], datetime],
        interval: float,
        *,
        corrections: CorrectionStore,
        retention_days: int,
        retention_every: float = 3600.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._listings = listings
        self._clock = clock
        self._interval = interval
        self._corrections = corrections
        self._retention_days = retention_days
        self._retention_every = retention_every
        self._metrics = metrics or Metrics()  # a registry's own, or one nobody scrapes
        self._retention_due = time.monotonic() + retention_every  # housekeeping: not in the first hour of serving
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jpr-expiry", daemon=True)
        self._thread.start()

    def record_now(self) -> int:
        count = self._listings.record_expiries(now=self._clock())
        self._metrics.housekeeping_pass("expiry", count)
        if count:
            log.info("recorded %d expired listing(s)", count)
        return count

    def unlink_now(self) -> int:
        count = self._corrections.unlink_expired(self._retention_days, now=self._clock())
        self._metrics.housekeeping_pass("retention", count)
        if count:
            log.info("unlinked the tokens of %d subject(s) past their retention period", count)
        return count

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.record_now()
                if time.monotonic() >= self._retention_due:
                    while self.unlink_now() == 500 and not self._stopped.is_set():  # a full batch: there may be more
                        pass
                    self._retention_due = time.monotonic() + self._retention_every
            except Exception:  # the next round tries again; the cause is in the log
                self._metrics.housekeeping_failed()
                log_background_failure(log, "recording expired listings or unlinking past retention failed")
