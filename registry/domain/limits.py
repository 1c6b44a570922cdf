"""Per-member rate limits: every lookup and tokenization is an oracle someone could harvest.

A token bucket per member and kind, counted in elements (`Tokenize`) and in
applicants (`Lookup`, `LookupBatch`). Held in memory: each replica limits the
calls it serves.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from registry.domain.errors import ResourceExhausted


@dataclass(frozen=True)
class Rate:
    per_second: float  # 0: unlimited
    burst: int


class RateLimiter:
    def __init__(
        self, rates: Mapping[str, Rate], clock: Callable[[], float] = time.monotonic, *,
        refused: Callable[[str, str], None] = lambda member, kind: None,
    ) -> None:
        self._rates = dict(rates)
        self._clock = clock
        self._refused = refused  # told (member, kind) of each refusal (metrics)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (member, kind) -> (level, when)
        self._lock = threading.Lock()

    def take(self, member: str, kind: str, amount: int) -> None:
        """Spend `amount` from the member's bucket, or refuse with the time to wait."""
        rate = self._rates[kind]
        if rate.per_second <= 0:
            return
        if amount > rate.burst:
            self._refused(member, kind)
            raise ResourceExhausted(
                f"{amount} {kind} in one call is more than your limit allows at once ({rate.burst}); send smaller batches"
            )
        now = self._clock()
        with self._lock:
            level, when = self._buckets.get((member, kind), (float(rate.burst), now))
            level = min(float(rate.burst), level + (now - when) * rate.per_second)
            if level < amount:
                self._buckets[(member, kind)] = (level, now)
                self._refused(member, kind)
                wait = (amount - level) / rate.per_second
                raise ResourceExhausted(
                    f"rate limit for {kind}: {rate.per_second:g} per second, {rate.burst} at once; retry in {wait:.2f} s",
                    retry_after_ms=math.ceil(wait * 1000),
                )
            self._buckets[(member, kind)] = (level - amount, now)
