"""Garbage collection for a process that holds thousands of sockets.

CPython's full collection walks every tracked object, and a process holding
5,000 viewers tracks about 950,000 (Twisted, autobahn and Channels objects for
each socket): one full collection then stops the event loop for 400 to 670 ms,
and they come every few seconds while an audience arrives. One landing while a
show is live delays every message in flight: in ``bench/chat_fanout.py`` the
difference between a p99 of ~200 ms and one of 550 to 760 ms.

So while a process holds ``FREEZE_MIN_SOCKETS`` or more, what survives a full
collection, and every second what it holds, moves to the permanent generation
(``gc.freeze``, a constant-time list splice): collections then walk only what
is newer. Frozen objects are still freed by reference counting; only cyclic
garbage among them (a closed socket leaves some) waits for a thaw, which puts
everything back and collects once: when as many sockets have closed since the
freeze as a quarter of those held then (about when CPython's own rule would
have run a full collection anyway), or after ``THAW_SECONDS``.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

FREEZE_MIN_SOCKETS = 1000
THAW_SECONDS = 600.0


class Collector:
    def __init__(self) -> None:
        self.held = 0
        self.closed = 0
        self.frozen_at: float | None = None
        # The most sockets held, and the sockets closed so far, when it froze.
        self.held_at_freeze = 0
        self.closed_at_freeze = 0
        self.installed = False
        self.thawing = False

    def socket_opened(self) -> None:
        """A socket opened (``live.consumers``)."""
        self.held += 1
        if not self.installed:
            # Freeze right after a full collection, even while the event
            # loop is too busy for ``tend`` (an audience arriving).
            gc.callbacks.append(self._after_collection)
            self.installed = True

    def socket_closed(self) -> None:
        self.held -= 1
        self.closed += 1

    def freeze_loaded(self) -> None:
        """Freeze what the process holds once its code is loaded (modules,
        Django's registries, URL patterns; ~120,000 objects): they live as
        long as the process, and every full collection would walk them again.
        Call once, from the ASGI entry point."""
        gc.collect()
        gc.freeze()

    def tend(self, now: float | None = None) -> None:
        """Call about once a second."""
        now = time.monotonic() if now is None else now
        if self.frozen_at is not None and (
            now - self.frozen_at >= THAW_SECONDS
            or self.closed - self.closed_at_freeze >= self.held_at_freeze / 4
        ):
            self.thaw()
        self.freeze(now)

    def freeze(self, now: float | None = None) -> None:
        if self.held < FREEZE_MIN_SOCKETS:
            return
        gc.freeze()
        if self.frozen_at is None:
            self.frozen_at = time.monotonic() if now is None else now
            self.held_at_freeze, self.closed_at_freeze = self.held, self.closed
        else:
            self.held_at_freeze = max(self.held_at_freeze, self.held)

    def thaw(self) -> None:
        """Put the frozen objects back and collect them (one full pause)."""
        started = time.perf_counter()
        frozen = gc.get_freeze_count()
        self.frozen_at = None
        gc.unfreeze()
        self.thawing = True
        try:
            found = gc.collect()
        finally:
            self.thawing = False
        logger.info(
            "thawed %d objects, collected %d in %.0f ms",
            frozen,
            found,
            (time.perf_counter() - started) * 1000,
        )

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2 and not self.thawing:
            self.freeze()


# One per process, as the garbage collector is the process's.
collector = Collector()
