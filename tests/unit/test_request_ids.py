"""Request ids: 16 hex digits from the CSPRNG, never repeated, also when the pool of random bytes is read again."""

from __future__ import annotations

import re
import threading
from typing import Any

from registry.server.request_ids import REQUEST_ID_KEY, RequestIds


class Trailers:
    """The one part of a servicer context that a new id touches."""

    def __init__(self) -> None:
        self.metadata: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.metadata = tuple(metadata)


def test_each_id_is_sixteen_hex_digits_sent_in_the_trailers_and_none_repeats_across_pool_refills() -> None:
    ids = RequestIds(batch=3)  # a refill every third call
    seen = []
    for _ in range(100):
        context = Trailers()
        request_id = ids.new(context)  # type: ignore[arg-type]
        assert re.fullmatch(r"[0-9a-f]{16}", request_id)
        assert context.metadata == ((REQUEST_ID_KEY, request_id),)
        seen.append(request_id)
    assert len(set(seen)) == 100


def test_threads_taking_ids_at_once_never_get_the_same_one() -> None:
    ids = RequestIds(batch=7)
    taken: list[list[str]] = [[] for _ in range(8)]

    def take(into: list[str]) -> None:
        for _ in range(500):
            into.append(ids.new(Trailers()))  # type: ignore[arg-type]

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({i for into in taken for i in into}) == 8 * 500
