"""The flood guard: a listing whose matches jump out of line is quarantined until a person decides.

A mistaken or malicious report that names a common identifier (a shared phone, a
mistyped ID number that is someone else's) shows as one listing suddenly matching
applicants of many platforms. Each strong match of an ACTIVE listing (the ones that
DENY) is noted on the request thread; once a second one thread folds the notes and
holds a listing when, within the last `window_minutes`:

- it matched at least `min_matches` times, from at least `min_platforms` members, and
- at least `factor` times its baseline: the higher of its own matches per hour over the
  `history_hours` before the window, the median listing's, and 1;

each member counted up to its share, `min_matches / min_platforms` (17 by default), in the
window and in the history alike: one member's lookups can neither quarantine a listing with
two others' chance matches, nor raise its baseline out of reach. A listing an admin released
is held again only for matches `factor` times those that tripped it before.

A held listing answers REVIEW (reason QUARANTINED) instead of DENY, heads the review
queue with these figures, and stays held until an admin releases or lifts it. Each
replica counts its own lookups (thresholds are per replica); the first replica's guard
to trip writes the quarantine and every replica answers by it.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from registry.store.listings import ListingStore
from registry.store.refs import parse_ref

log = logging.getLogger("jpr.flood")


@dataclass(frozen=True)
class FloodLimits:
    window_minutes: int = 60
    min_matches: int = 50  # 0 turns the guard off
    min_platforms: int = 3
    factor: float = 10.0
    history_hours: int = 24


@dataclass
class _Listing:
    # Matches per minute (minutes since the epoch) and member, within the window.
    minutes: dict[int, Counter[str]] = field(default_factory=dict)
    # Before the window: matches per hour and member, for the listing's own rate.
    hours: dict[int, Counter[str]] = field(default_factory=dict)


class FloodGuard:
    def __init__(self, store: ListingStore, limits: FloodLimits, clock: Callable[[], datetime], interval: float = 1.0) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock
        self._interval = interval
        # No member counts for more than its share: one member's lookups alone never quarantine a
        # listing, nor lift its baseline out of reach (min_platforms members must each bring theirs).
        self._share = max(1, math.ceil(limits.min_matches / limits.min_platforms))
        self._notes: deque[tuple[str, Iterable[str], datetime]] = deque()  # appended by request threads
        self._listings: dict[int, _Listing] = {}
        self._lock = threading.Lock()  # one check at a time
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jpr-flood", daemon=True)
        self._thread.start()

    def note(self, member: str, listing_refs: Iterable[str]) -> None:
        """Strong matches of ACTIVE listings by one lookup call (deque.append: no lock on the hot path)."""
        if self._limits.min_matches and listing_refs:
            self._notes.append((member, listing_refs, self._clock()))

    def check(self) -> list[int]:
        """Fold the notes; quarantine each listing out of line. The listings quarantined now."""
        with self._lock:
            now = self._clock()
            self._fold(now)
            held = []
            for listing_id, figures in self._out_of_line():
                if self._store.quarantine(listing_id, figures, now=now):
                    log.warning("listing L%d quarantined: %s", listing_id, figures["explanation"])
                    held.append(listing_id)
                self._listings.pop(listing_id, None)  # held, or decided by a person: count afresh from here
            return held

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _fold(self, now: datetime) -> None:
        while self._notes:
            member, refs, at = self._notes.popleft()
            minute = _minute(at)
            for ref in refs:
                state = self._listings.setdefault(parse_ref("L", ref), _Listing())
                state.minutes.setdefault(minute, Counter())[member] += 1
        window_start = _minute(now) - self._limits.window_minutes
        oldest_hour = window_start // 60 - self._limits.history_hours
        for listing_id, state in list(self._listings.items()):
            for minute in [m for m in state.minutes if m <= window_start]:
                state.hours.setdefault(minute // 60, Counter()).update(state.minutes.pop(minute))
            for hour in [h for h in state.hours if h < oldest_hour]:
                del state.hours[hour]
            if not state.minutes and not state.hours:
                del self._listings[listing_id]

    def _capped(self, counts: Iterable[Counter[str]]) -> tuple[int, int]:
        """(matches with each member counted up to its share, members) over `counts` together."""
        total: Counter[str] = Counter()
        for each in counts:
            total.update(each)
        return sum(min(n, self._share) for n in total.values()), len(total)

    def _out_of_line(self) -> list[tuple[int, dict[str, object]]]:
        limits = self._limits
        own = {
            listing_id: sum(self._capped([counts])[0] for counts in state.hours.values()) / limits.history_hours
            for listing_id, state in self._listings.items()
        }
        median = statistics.median(own.values()) if own else 0.0
        tripped = []
        for listing_id, state in self._listings.items():
            matches, platforms = self._capped(state.minutes.values())
            baseline = max(1.0, own[listing_id], median)
            if matches >= limits.min_matches and platforms >= limits.min_platforms and matches >= limits.factor * baseline:
                explanation = (
                    f"{matches} strong matches from {platforms} members in {limits.window_minutes} minutes "
                    f"(each member counted up to {self._share}), {matches / baseline:.0f}x its baseline of {baseline:.1f} an hour "
                    f"(own {own[listing_id]:.1f}, median listing {median:.1f})"
                )
                tripped.append((listing_id, {
                    "matches": matches, "platforms": platforms, "window_minutes": limits.window_minutes,
                    "own_hourly": own[listing_id], "median_hourly": median, "factor": limits.factor, "explanation": explanation,
                }))
        return tripped

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.check()
            except Exception:  # the next round tries again; the cause is in the log
                log.exception("the flood guard's check failed")


def _minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


