"""What a process reads about a show for every chat message, kept briefly.

A chat hook (a claim keyword, a giveaway's keyword) looks at every message
in the room; reading the show's keywords from the database for each would
put a query behind every line of a busy chat. A process keeps its reading
for a second: a keyword set through another process takes effect there at
most that much later. The process that changes it calls ``forget`` and
reads afresh at once.

A reading under way when ``forget`` is called may hold what was there before
the change: it answers the message that asked for it but is not kept, or the
process would trust the old words for another second.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Shows a process keeps readings for before it starts over.
MAX_SHOWS = 1000


class ShowReads(Generic[T]):
    """Per show, one reading trusted for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._read: dict[int, tuple[float, T]] = {}
        self._changes: dict[int, int] = {}

    async def get(self, show_id: int, read: Callable[[], Awaitable[T]]) -> T:
        """The kept reading while it is fresh, else ``await read()``."""
        kept = self._read.get(show_id)
        if kept is not None and time.monotonic() - kept[0] < self.seconds:
            return kept[1]
        changes = self._changes.get(show_id, 0)
        found = await read()
        if self._changes.get(show_id, 0) == changes:
            if len(self._read) > MAX_SHOWS:
                self._read.clear()
            self._read[show_id] = (time.monotonic(), found)
        return found

    def forget(self, show_id: int) -> None:
        """This process changed what is read: the next ``get`` reads."""
        if len(self._changes) > MAX_SHOWS:
            # A reading under way for some show may then be kept: at worst
            # for ``seconds``, as if another process had made the change.
            self._changes.clear()
        self._changes[show_id] = self._changes.get(show_id, 0) + 1
        self._read.pop(show_id, None)

    def clear(self) -> None:
        self._read.clear()
        self._changes.clear()
