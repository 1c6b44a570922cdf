"""Per-member rate limits: every lookup and tokenization is an oracle someone could harvest.

A token bucket per member and kind, counted in elements (`Tokenize`) and in
applicants (`Lookup`, `LookupBatch`). The bucket is shared by every process
that serves the registry (all replicas, all processes of each): it lives in the
registry's database (`Buckets`), so N replicas do not make enumeration N times
cheaper. A database round trip on every call would cost the lookups their
throughput, so each process *leases* a chunk of the bucket at a time
(`lease_size`) in one short transaction and spends it locally; it leases again
when the chunk is spent and gives what is left back when it stops.

Worst case: a chunk a process holds is not in the shared bucket, which refills
up to the burst meanwhile, so with P processes in all a member can spend at
most `burst + (P - 1) * lease_size` at once, and over any T seconds at most
that plus `T * per_second`. A process counts what it held against the burst when
it refills the bucket, so one process alone never passes the burst (as before the
buckets were shared; it may find up to one lease less after idling with part of
one, which it counts as held until it last spent). A process that dies without
stopping loses what it held (less than one chunk), which the bucket refills at
its rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from registry.domain.errors import ResourceExhausted


@dataclass(frozen=True)
class Rate:
    per_second: float  # 0: unlimited
    burst: int


@dataclass(frozen=True)
class Bucket:
    """A shared bucket as stored: its level at `updated_at` (seconds on the limiter's clock)."""

    level: float
    updated_at: float


Step = Callable[[Bucket], Bucket]


class Buckets(Protocol):
    def change(self, member: str, kind: str, full: Bucket, step: Step) -> None:
        """Replace the member's bucket of `kind` (`full` if it has none yet) by `step` of it, ordered
        with every other process's changes to the same bucket."""


class LocalBuckets:
    """Buckets in this process's memory: for a limiter no other process shares (tests, tools)."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def change(self, member: str, kind: str, full: Bucket, step: Step) -> None:
        with self._lock:
            self._buckets[(member, kind)] = step(self._buckets.get((member, kind), full))


# Unix seconds near 1.7e9 carry about 2.4e-7 s of rounding: a bucket that lacks less than this
# much of its rate is full enough, or a retry at the very moment given would be refused.
CLOCK_SLACK_SECONDS = 1e-6
LEASE_SECONDS = 0.5  # a lease holds at most this long of the rate ...
LEASE_SHARE = 8  # ... and at most this share of the burst


def lease_size(rate: Rate) -> float:
    """How much a process leases at a time: what one process may hold beyond the shared bucket."""
    return min(rate.burst / LEASE_SHARE, rate.per_second * LEASE_SECONDS)


@dataclass
class _Lease:
    """What this process holds of one bucket, and what it last saw of the shared level."""

    held: float = 0.0
    held_then: float = 0.0  # what it held after its last change of the bucket (it only spends until the next)
    spent_at: float = -math.inf  # when it last spent: since then it holds `held`
    seen_level: float = math.inf  # the shared level after this process's last change (inf: never seen)
    seen_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refilled(self, bucket: Bucket, now: float, rate: Rate) -> float:
        """The shared level at `now`, refilled as one bucket with what this process holds would be: up
        to the burst less `held_then` until it last spent, less what it holds since."""
        level = _refilled(bucket.level, bucket.updated_at, self.spent_at, rate, rate.burst - self.held_then)
        return _refilled(level, max(bucket.updated_at, self.spent_at), now, rate, rate.burst - self.held)


class RateLimiter:
    def __init__(
        self, rates: Mapping[str, Rate], clock: Callable[[], float] = time.monotonic, *,
        refused: Callable[[str, str], None] = lambda member, kind: None, buckets: Buckets | None = None,
    ) -> None:
        self._rates = dict(rates)
        self._clock = clock  # seconds; shared buckets need every process's clock to agree
        self._refused = refused  # told (member, kind) of each refusal (metrics)
        self._buckets: Buckets = buckets or LocalBuckets()
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._lock = threading.Lock()  # guards `_leases` only; each lease has its own lock

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
        lease = self._lease(member, kind)
        with lease.lock:
            now = self._clock()
            if lease.held < amount:
                self._lease_more(member, kind, rate, lease, amount, now)
            lease.held -= amount
            lease.spent_at = now

    def close(self) -> None:
        """Give what this process still holds back to the shared buckets (at shutdown)."""
        with self._lock:
            leases = list(self._leases.items())
        for (member, kind), lease in leases:
            with lease.lock:
                if lease.held > 0:
                    self._give_back(member, kind, self._rates[kind], lease)

    def _lease(self, member: str, kind: str) -> _Lease:
        found = self._leases.get((member, kind))  # a dict read is atomic: no lock on the hot path
        if found is None:
            with self._lock:
                found = self._leases.setdefault((member, kind), _Lease())
        return found

    def _lease_more(self, member: str, kind: str, rate: Rate, lease: _Lease, amount: int, now: float) -> None:
        """Lease at least what `amount` lacks from the shared bucket, or refuse. A refused member's calls
        are refused here without the database while even a bucket nobody else drew on would lack it."""
        need = amount - lease.held - rate.per_second * CLOCK_SLACK_SECONDS
        ceiling = lease.seen_level + max(0.0, now - lease.seen_at) * rate.per_second
        if ceiling < need:
            self._refuse(member, kind, rate, need - ceiling)
        want = max(need, lease_size(rate))
        granted, left = 0.0, 0.0

        def step(bucket: Bucket) -> Bucket:
            nonlocal granted, left
            level = lease.refilled(bucket, now, rate)
            granted = min(level, want) if level >= need else 0.0
            left = level - granted  # what refusal is decided by: `level` itself when nothing was granted
            return Bucket(left, max(now, bucket.updated_at))

        self._buckets.change(member, kind, Bucket(float(rate.burst), now), step)
        lease.held += granted
        lease.seen_level, lease.seen_at = left, now
        if left < need and granted == 0.0:
            lease.held_then = lease.held
            self._refuse(member, kind, rate, need - left)
        lease.held_then = lease.held - amount

    def _give_back(self, member: str, kind: str, rate: Rate, lease: _Lease) -> None:
        now = self._clock()

        def step(bucket: Bucket) -> Bucket:
            return Bucket(min(float(rate.burst), lease.refilled(bucket, now, rate) + lease.held), max(now, bucket.updated_at))

        self._buckets.change(member, kind, Bucket(float(rate.burst), now), step)
        lease.held = lease.held_then = 0.0
        lease.seen_level = math.inf

    def _refuse(self, member: str, kind: str, rate: Rate, lacking: float) -> None:
        self._refused(member, kind)
        wait = lacking / rate.per_second
        raise ResourceExhausted(
            f"rate limit for {kind}: {rate.per_second:g} per second, {rate.burst} at once; retry in {wait:.2f} s",
            retry_after_ms=math.ceil(wait * 1000),
        )


def _refilled(level: float, since: float, until: float, rate: Rate, cap: float) -> float:
    """`level` refilled at the rate from `since` to `until`, up to `cap`; it never drops (a clock behind adds nothing)."""
    added = max(0.0, until - since) * rate.per_second
    return max(level, min(cap, level + added))
