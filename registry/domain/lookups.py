"""Entry audits: tokens in, verdicts out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from jpr_client.model import LookupResult
from registry.domain.errors import InvalidArgument
from registry.domain.verdict import decide
from registry.store.view import ReadView

MAX_BATCH = 1000


class LookupService:
    def __init__(self, store: ReadView, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def lookup(self, applicant: Sequence[bytes]) -> LookupResult:
        return self.lookup_batch([applicant])[0]

    def lookup_batch(self, applicants: Sequence[Sequence[bytes]]) -> list[LookupResult]:
        """One result per applicant (its token values, validated), in order; one search of the index for the whole batch."""
        if len(applicants) > MAX_BATCH:
            raise InvalidArgument(f"{len(applicants)} applicants in one batch; at most {MAX_BATCH} are allowed")
        for index, tokens in enumerate(applicants):
            if not tokens:
                raise InvalidArgument(f"applicants[{index}] has no identifiers; give at least one token")
        hits, states = self._store.find([value for tokens in applicants for value in tokens], self._clock())
        return [decide(tokens, hits, states) for tokens in applicants]
