"""The lookup index: records keep what the verdict needs, and a concurrent lookup never misses a token mid-change."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime, timedelta

from jpr_client.model import Category, IdentifierType, Role, Severity
from registry.domain.verdict import Hit
from registry.store.lookup_index import Listing, LookupIndex, Report, SubjectEntry

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
RIC, PHONE = os.urandom(64), os.urandom(64)


def listed(subject: int, listing: int, *tokens: tuple[bytes, IdentifierType]) -> SubjectEntry:
    return SubjectEntry(
        subject=subject,
        hits={token: frozenset({Hit(subject, kind, listing)}) for token, kind in tokens},
        listings=(Listing(listing, NOW - timedelta(days=3), NOW + timedelta(days=700), appealed=True, confirmations=2, disputes=1),),
        reports=(Report(listing, True, 4, Role.ANCHOR, Category.FRAUD, Severity.SEVERE),),
    )


def test_a_subjects_record_gives_back_its_listing_and_reports_exactly() -> None:
    index = LookupIndex()
    index.apply({7: listed(7, 30, (RIC, IdentifierType.CN_RIC), (PHONE, IdentifierType.PHONE))})
    hits, states = index.find([RIC, PHONE, os.urandom(64)], NOW)
    assert hits == {RIC: {Hit(7, IdentifierType.CN_RIC, 30)}, PHONE: {Hit(7, IdentifierType.PHONE, 30)}}
    state = states[7]
    assert (state.subject_id, state.listed_from, state.listed_until) == ("S7", NOW - timedelta(days=3), NOW + timedelta(days=700))
    assert state.listed is not None and state.listed.categories == {Category.FRAUD} and state.listed.severity is Severity.SEVERE
    assert (state.appeal_pending, state.confirmations, state.disputes, state.active_listings) == (True, 2, 1, {30})
    assert (index.subjects, index.tokens) == (1, 2)
    index.apply({7: None})
    assert index.find([RIC, PHONE], NOW) == ({}, {}) and (index.subjects, index.tokens) == (0, 0)


def test_a_token_shared_by_two_subjects_answers_for_both_and_outlives_one() -> None:
    index = LookupIndex()
    index.apply({1: listed(1, 10, (RIC, IdentifierType.CN_RIC), (PHONE, IdentifierType.PHONE))})
    index.apply({2: listed(2, 11, (os.urandom(64), IdentifierType.CN_RIC), (PHONE, IdentifierType.PHONE))})
    hits, states = index.find([PHONE], NOW)
    assert {h.subject for h in hits[PHONE]} == {1, 2} and set(states) == {1, 2}
    index.apply({1: None})
    hits, states = index.find([PHONE], NOW)
    assert hits == {PHONE: {Hit(2, IdentifierType.PHONE, 11)}} and set(states) == {2}


def test_a_concurrent_lookup_never_misses_a_token_during_merges_and_splits() -> None:
    index = LookupIndex()
    merged = {1: listed(1, 10, (RIC, IdentifierType.CN_RIC), (PHONE, IdentifierType.PHONE)), 2: None}
    split = {1: None, 2: listed(2, 10, (RIC, IdentifierType.CN_RIC), (PHONE, IdentifierType.PHONE))}
    index.apply(merged)
    stop, misses, lookups = threading.Event(), [], [0]

    def look() -> None:
        while not stop.is_set():
            hits, states = index.find([RIC, PHONE], NOW)
            lookups[0] += 1
            if len(hits) != 2 or not states or any(s.listed is None for s in states.values()):
                misses.append((hits, states))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside every change
    readers = [threading.Thread(target=look) for _ in range(3)]
    try:
        for reader in readers:
            reader.start()
        for n in range(3000):
            index.apply(split if n % 2 else merged)  # the token moves from one subject to the other and back
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        sys.setswitchinterval(interval)
    assert lookups[0] > 100
    assert misses == []
