"""Which rendition a WebRTC viewer should get, from what its receiver reports.

A pure policy, one per viewer: the broadcast feeds it the receiver's bandwidth
estimates (REMB, from Chrome's and aiortc's receive-side estimators) and the
fraction of packets lost (receiver reports), and asks it which rendition the
viewer should be on given what each rendition really sends now. It never
touches a socket or a clock: every call carries ``now`` (seconds).

Rendition 0 is the highest. Going down is quick (a second of evidence),
going up is slow (seconds of evidence, and never right after a step down),
so a viewer does not flap between the two:

- **Down** when the estimate stayed below ``DOWN_RATIO`` of what the current
  rendition sends for ``DOWN_HOLD`` seconds, or two reports in a row lost
  ``LOSS_DOWN`` or more. (Moving a viewer at its first lossy report, when
  it starts on a link too narrow for its rendition, was tried: in
  ``bench/video_fanout.py --rate-kbit 600 --settle 0`` it froze again 2 to 6 s
  later, three runs of three, against once at the start before.)
- **Up** when, for ``UP_HOLD`` seconds, the estimate stayed at least
  ``UP_RATIO`` times what the higher rendition sends and no report lost
  ``LOSS_UP`` or more; at the earliest ``UP_HOLD`` after the last switch.
- **Probe up** otherwise. A receive-side estimator never reports much more
  than it receives (WebRTC's and aiortc's cap the estimate at 1.5 times the
  incoming rate), so on the low rendition it cannot show room for one four
  times larger. After ``PROBE_FIRST`` seconds without loss or a falling
  estimate the viewer tries the higher rendition; a probe that ends in a
  step down within ``PROBE_FAILED_WITHIN`` seconds doubles the wait (up to
  ``PROBE_MAX``), one that holds resets it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

DOWN_RATIO = 0.7
DOWN_HOLD = 1.0
LOSS_DOWN = 0.10
LOSS_DOWN_REPORTS = 2
UP_RATIO = 1.25
LOSS_UP = 0.02
UP_HOLD = 5.0
PROBE_FIRST = 30.0
PROBE_MAX = 300.0
PROBE_FAILED_WITHIN = 10.0
# What a rendition is taken to need when it has sent almost nothing yet.
MIN_RATE = 50_000


@dataclass
class LadderPolicy:
    """One viewer's position on a ladder of ``levels`` renditions."""

    levels: int
    level: int = 0
    estimate: float | None = None
    switches: int = 0
    probe_after: float = PROBE_FIRST
    _below_since: float | None = None
    _above_since: float | None = None
    _calm_since: float | None = None
    _lossy_reports: int = 0
    _changed_at: float | None = None
    _went_up_at: float | None = None

    def on_estimate(self, now: float, bitrate: float) -> None:
        """A bandwidth estimate, bits per second."""
        self.estimate = bitrate

    def on_loss(self, now: float, fraction: float) -> None:
        """A receiver report's fraction of packets lost (0 to 1)."""
        self._lossy_reports = self._lossy_reports + 1 if fraction >= LOSS_DOWN else 0
        if fraction >= LOSS_UP:
            self._above_since = None
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now

    def decide(self, now: float, rates: Sequence[float]) -> int:
        """The level the viewer should be on now; ``rates``: what each
        rendition sends, bits per second, highest first."""
        need = [max(MIN_RATE, rate) for rate in rates]
        self._track(now, need)
        if self._should_go_down(now):
            self._move(now, self.level + 1)
            if (
                self._went_up_at is not None
                and now - self._went_up_at <= PROBE_FAILED_WITHIN
            ):
                self.probe_after = min(PROBE_MAX, self.probe_after * 2)
            self._went_up_at = None
        elif self._should_go_up(now):
            self._move(now, self.level - 1)
            self._went_up_at = now
        elif (
            self._went_up_at is not None
            and now - self._went_up_at > PROBE_FAILED_WITHIN
        ):
            self.probe_after = PROBE_FIRST
            self._went_up_at = None
        return self.level

    def _track(self, now: float, need: list[float]) -> None:
        if self.estimate is None:
            return
        if self.estimate < DOWN_RATIO * need[self.level]:
            if self._below_since is None:
                self._below_since = now
            self._calm_since = None
        else:
            self._below_since = None
            if self._calm_since is None:
                self._calm_since = now
        if self.level > 0 and self.estimate >= UP_RATIO * need[self.level - 1]:
            if self._above_since is None:
                self._above_since = now
        else:
            self._above_since = None

    def _should_go_down(self, now: float) -> bool:
        if self.level >= self.levels - 1:
            return False
        if self._lossy_reports >= LOSS_DOWN_REPORTS:
            return True
        return self._below_since is not None and now - self._below_since >= DOWN_HOLD

    def _should_go_up(self, now: float) -> bool:
        if self.level == 0:
            return False
        if self._changed_at is not None and now - self._changed_at < UP_HOLD:
            return False
        if self._above_since is not None and now - self._above_since >= UP_HOLD:
            return True
        return (
            self._calm_since is not None and now - self._calm_since >= self.probe_after
        )

    def _move(self, now: float, level: int) -> None:
        self.level = level
        self.switches += 1
        self._changed_at = now
        self._below_since = self._above_since = None
        self._calm_since = None
        self._lossy_reports = 0


RATE_WINDOW = 2.0


class RateMeter:
    """Bits per second sent over the last ``window`` seconds (two keyframes
    at one per second, so a keyframe's burst does not swing it)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._sizes: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, now: float, size: int) -> None:
        self._sizes.append((now, size))
        self._bytes += size
        self._expire(now)

    def rate(self, now: float) -> float:
        self._expire(now)
        return self._bytes * 8 / self._window

    def _expire(self, now: float) -> None:
        while self._sizes and self._sizes[0][0] <= now - self._window:
            self._bytes -= self._sizes.popleft()[1]
