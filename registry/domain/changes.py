"""The changes feed: members follow listing changes to re-screen the people they already host."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from registry.domain.errors import PermissionDenied, ResourceExhausted, quoted
from registry.domain.model import ListingChange, MemberStatus
from registry.store.changes import ChangeStore
from registry.store.view import ReadView


class ChangeFeed:
    """Streams changes up to the view's commit horizon, then waits for the view to move.

    Only events at or below the view's floor are sent: below it every
    transaction has committed (or never will), so a change can never appear
    behind a cursor a member already holds. A watch holds a server thread, so
    at most `max_watchers` run at once.
    """

    def __init__(
        self,
        store: ChangeStore,
        view: ReadView,
        member_status: Callable[[str], MemberStatus | None],
        *,
        max_watchers: int,
        page: int = 200,
        wake_every: float = 1.0,
    ) -> None:
        self._store = store
        self._view = view
        self._member_status = member_status
        self._slots = threading.BoundedSemaphore(max_watchers)
        self._max_watchers = max_watchers
        self._page = page
        self._wake_every = wake_every

    def watch(self, member: str, after: int, active: Callable[[], bool]) -> Iterator[ListingChange]:
        """Changes after `after` while the call is `active` and `member` stays ACTIVE (a suspension ends the watch)."""
        if not self._slots.acquire(blocking=False):
            raise ResourceExhausted(
                f"{self._max_watchers} change watches are open, the most this registry serves at once; "
                "retry later, or keep one watch per platform"
            )
        try:
            while active():
                status = self._member_status(member)
                if status is not MemberStatus.ACTIVE:
                    raise PermissionDenied(f"member {quoted(member)} is {status.value if status else 'not registered'}")
                through = self._view.floor
                if through <= after:
                    self._view.wait_for_change(self._wake_every)
                    continue
                changes, last = self._store.read(after, through, self._page)
                yield from changes
                after = last
        finally:
            self._slots.release()
