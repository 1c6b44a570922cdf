"""The changes feed: members follow listing changes to re-screen the people they already host."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from jpr_client.model import ListingChange
from registry.store.changes import ChangeStore
from registry.store.view import ReadView


class ChangeFeed:
    """Streams changes up to the view's commit horizon, then waits for the view to move.

    Only events at or below the view's floor are sent: below it every
    transaction has committed (or never will), so a change can never appear
    behind a cursor a member already holds. How many watches may be open, and
    ending them when their caller loses access, is the server's part (every
    stream is capped and swept alike: `registry.server.streams`).
    """

    def __init__(
        self,
        store: ChangeStore,
        view: ReadView,
        *,
        page: int = 200,
        wake_every: float = 1.0,
    ) -> None:
        self._store = store
        self._view = view
        self._page = page
        self._wake_every = wake_every

    def wake(self) -> None:
        """Wake the waiting watches: one whose call ended sees it at once instead of at its next wake-up."""
        self._view.wake_waiters()

    def watch(self, after: int, active: Callable[[], bool]) -> Iterator[ListingChange]:
        """Changes after `after` while the call is `active`."""
        while active():
            through = self._view.floor
            if through <= after:
                self._view.wait_for_change(self._wake_every)
                continue
            changes, last = self._store.read(after, through, self._page)
            yield from changes
            after = last
