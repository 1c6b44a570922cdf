"""Signs transparency-log checkpoints in the background of a serving registry."""

from __future__ import annotations

import logging
import threading

from registry.domain.transparency import TransparencyService
from registry.server.metrics import Metrics
from registry.store.database import log_background_failure

log = logging.getLogger("jpr.log")


class Checkpointer:
    """Every `interval` seconds: integrate the leaves committed since (their transactions gave them
    indexes), commit, then sign a checkpoint of the new size; nothing when the log did not grow.

    Every replica runs one: the tree's row lock lets one integrate at a time, and a size signed
    already is not signed again. The first pass runs at once, so a new registry has a checkpoint.
    """

    def __init__(self, transparency: TransparencyService, interval: float, *, metrics: Metrics | None = None) -> None:
        self._transparency = transparency
        self._interval = interval
        self._metrics = metrics or Metrics()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jpr-checkpoints", daemon=True)
        self._thread.start()

    def sign_now(self) -> int | None:
        """One pass; the size of the checkpoint signed, or None when there was nothing new."""
        signed = self._transparency.advance()
        if signed is None:
            return None
        self._metrics.housekeeping_pass("checkpoint", 1)
        log.debug("signed the checkpoint of tree size %d", signed.size)
        return signed.size

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                self.sign_now()
            except Exception:  # the next pass tries again; the cause is in the log
                self._metrics.housekeeping_failed()
                log_background_failure(log, "integrating the transparency log or signing its checkpoint failed")
            if self._stopped.wait(self._interval):
                return
