"""A user-space network between a WebRTC viewer and the media node, on loopback.

This kernel has no ``netem`` (``tbf`` and ``htb`` shape inside a namespace, but
nothing delays or drops at random), so the benchmark and the tests put a UDP
relay between each viewer and the node and impair what passes through it:

- **loss**: each datagram is dropped with probability ``loss`` (seeded, so a
  run can be repeated), in both directions (RTCP feedback is lost too);
- **delay and jitter**: each datagram is held ``delay_ms`` ± ``jitter_ms``
  (uniform), independently of its neighbours, so packets reorder exactly as
  far as the jitter implies (30 ± 10 ms reorders packets sent under 20 ms
  apart; nothing else does);
- **rate cap**: a token bucket of ``rate_kbit`` (burst ``burst_bytes``) in
  front of the delay, with a queue of ``queue_ms`` worth of bytes at that rate;
  what does not fit is dropped, as ``tbf`` does;
- **outage**: everything is dropped between two moments (``schedule_outage``).

One relay is one loopback socket both sides talk to: the viewer's offer and the
node's answer have their ICE candidates rewritten to it (``Relay.wrap``), so
each side sees the relay as the other's only host candidate and there is no
direct path for ICE to pick instead. The relay forwards what comes from the
node to the viewer and everything else to the node. Not modelled: NAT
(addresses stay the same), bufferbloat beyond the bounded queue, bursty
(Gilbert-Elliott) loss, asymmetric routes, delay that varies slowly.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import typing
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Address = tuple[str, int]
# (status, headers, body) for a POST of an SDP offer, as in live.media.clients.
HttpPost = Callable[[str, str, str], Awaitable[tuple[int, dict[str, str], str]]]

CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ )(\S+)( \d+ )(\S+) (\d+)( typ .*)$", re.MULTILINE
)


@dataclass(frozen=True)
class Impairment:
    """What one direction of a relay does to the datagrams it forwards."""

    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_kbit: float = 0.0
    burst_bytes: int = 10_000
    queue_ms: float = 200.0

    @property
    def impaired(self) -> bool:
        return bool(self.loss or self.delay_ms or self.jitter_ms or self.rate_kbit)


@dataclass
class PipeStats:
    received: int = 0
    delivered: int = 0
    lost: int = 0
    queue_dropped: int = 0
    outage_dropped: int = 0
    # Seconds each delivered datagram spent in the pipe (rate queue + delay,
    # and the event loop's lateness), and the delay drawn for each.
    delays: list[float] = field(default_factory=list)
    drawn: list[float] = field(default_factory=list)


class Pipe:
    """One direction: ``offer(data, to)`` drops, queues and delays ``data``,
    then ``send(data, to)``."""

    def __init__(
        self,
        impairment: Impairment,
        send: Callable[[bytes, Address], None],
        rng: random.Random,
        outage: Callable[[], bool],
        *,
        keep_delays: bool = False,
    ) -> None:
        self.impairment = impairment
        self.stats = PipeStats()
        self._send = send
        self._rng = rng
        self._outage = outage
        self._keep_delays = keep_delays
        self._loop = asyncio.get_running_loop()
        self._rate = impairment.rate_kbit * 1000 / 8  # bytes per second
        self._queue: deque[tuple[bytes, Address, float]] = deque()
        self._queued_bytes = 0
        self._queue_limit = int(self._rate * impairment.queue_ms / 1000)
        self._tokens = float(impairment.burst_bytes)
        self._filled_at = time.monotonic()
        self._draining: asyncio.TimerHandle | None = None
        self.closed = False

    def offer(self, data: bytes, to: Address) -> None:
        self.stats.received += 1
        if self._outage():
            self.stats.outage_dropped += 1
            return
        if self.impairment.loss and self._rng.random() < self.impairment.loss:
            self.stats.lost += 1
            return
        now = time.monotonic()
        if not self._rate:
            self._delay(data, to, now)
            return
        if self._queued_bytes + len(data) > max(self._queue_limit, len(data)):
            self.stats.queue_dropped += 1
            return
        self._queue.append((data, to, now))
        self._queued_bytes += len(data)
        self._drain()

    def _drain(self) -> None:
        self._draining = None
        now = time.monotonic()
        self._tokens = min(
            float(self.impairment.burst_bytes),
            self._tokens + (now - self._filled_at) * self._rate,
        )
        self._filled_at = now
        while self._queue and self._tokens >= len(self._queue[0][0]):
            data, to, arrived = self._queue.popleft()
            self._queued_bytes -= len(data)
            self._tokens -= len(data)
            self._delay(data, to, arrived)
        if self._queue and self._draining is None and not self.closed:
            wait = (len(self._queue[0][0]) - self._tokens) / self._rate
            self._draining = self._loop.call_later(wait, self._drain)

    def _delay(self, data: bytes, to: Address, arrived: float) -> None:
        spread = self.impairment.jitter_ms
        delay_ms = self.impairment.delay_ms + (
            self._rng.uniform(-spread, spread) if spread else 0.0
        )
        if self._keep_delays:
            self.stats.drawn.append(delay_ms / 1000)
        if delay_ms <= 0:
            self._deliver(data, to, arrived)
        else:
            self._loop.call_later(delay_ms / 1000, self._deliver, data, to, arrived)

    def _deliver(self, data: bytes, to: Address, arrived: float) -> None:
        if self.closed:
            return
        self.stats.delivered += 1
        if self._keep_delays:
            self.stats.delays.append(time.monotonic() - arrived)
        self._send(data, to)

    def close(self) -> None:
        self.closed = True
        if self._draining is not None:
            self._draining.cancel()


class Relay(asyncio.DatagramProtocol):
    """A UDP relay on one loopback socket between a viewer and the node
    (``open_relay``). Datagrams from ``node`` go to ``viewer`` through
    ``down``, all others to ``node`` through ``up``; the viewer's address is
    the first one heard from when it was not given."""

    def __init__(
        self,
        down: Impairment,
        up: Impairment,
        *,
        seed: int | None = None,
        keep_delays: bool = False,
    ) -> None:
        self.node: Address | None = None
        self.viewer: Address | None = None
        self.address: Address = ("127.0.0.1", 0)
        self._rng = random.Random(seed)  # a simulation, not a secret
        self._impairments = (down, up)
        self._keep_delays = keep_delays
        self._outages: list[tuple[float, float]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.down: Pipe
        self.up: Pipe

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)
        self.address = transport.get_extra_info("sockname")[:2]
        down, up = self._impairments
        self.down = Pipe(
            down, self._send, self._rng, self.in_outage, keep_delays=self._keep_delays
        )
        self.up = Pipe(
            up, self._send, self._rng, self.in_outage, keep_delays=self._keep_delays
        )

    def _send(self, data: bytes, to: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, to)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        addr = addr[:2]
        if addr == self.node:
            if self.viewer is not None:
                self.down.offer(data, self.viewer)
            return
        if self.viewer is None:
            self.viewer = addr
        if addr == self.viewer and self.node is not None:
            self.up.offer(data, self.node)

    def error_received(self, exc: Exception) -> None:
        # A port that went away (ICMP unreachable on loopback): keep relaying.
        return None

    def schedule_outage(self, start: float, seconds: float = 1.0) -> None:
        """Drop everything, both ways, from ``start`` (``time.monotonic()``)
        for ``seconds``."""
        self._outages.append((start, start + seconds))

    def in_outage(self) -> bool:
        now = time.monotonic()
        return any(start <= now < end for start, end in self._outages)

    def close(self) -> None:
        self.down.close()
        self.up.close()
        if self.transport is not None:
            self.transport.close()

    def wrap(self, post: HttpPost) -> HttpPost:
        """``post`` (a WHEP/WHIP offer's POST) with both descriptions' ICE
        candidates pointed at this relay: the offer's before it is sent (the
        viewer's own address is noted), the answer's before the client
        applies it (the node's address is noted)."""

        async def relayed(
            url: str, sdp: str, token: str
        ) -> tuple[int, dict[str, str], str]:
            viewer = first_udp_candidate(sdp)
            if viewer is not None:
                self.viewer = viewer
            status, headers, body = await post(
                url, rewrite_candidates(sdp, self.address), token
            )
            node = first_udp_candidate(body)
            if status == 201 and node is not None:
                self.node = node
                body = rewrite_candidates(body, self.address)
            return status, headers, body

        return relayed


async def open_relay(
    down: Impairment,
    up: Impairment | None = None,
    *,
    seed: int | None = None,
    keep_delays: bool = False,
    host: str = "127.0.0.1",
) -> Relay:
    """A relay listening on ``host`` (an ephemeral port); ``up`` defaults to
    the same impairment as ``down``."""
    loop = asyncio.get_running_loop()
    _transport, relay = await loop.create_datagram_endpoint(
        lambda: Relay(down, up or down, seed=seed, keep_delays=keep_delays),
        local_addr=(host, 0),
    )
    return relay


def first_udp_candidate(sdp: str) -> Address | None:
    """The address and port of the first UDP ICE candidate in ``sdp``."""
    for match in CANDIDATE.finditer(sdp):
        if match.group(2).lower() == "udp":
            return match.group(4), int(match.group(5))
    return None


def rewrite_candidates(sdp: str, address: Address) -> str:
    """``sdp`` with every UDP ICE candidate's address and port replaced by
    ``address`` (a repeated candidate is harmless) and TCP candidates removed,
    so the relay is the only way through."""
    host, port = address
    separator = "\r\n" if "\r\n" in sdp else "\n"
    lines = []
    for line in sdp.split(separator):
        match = CANDIDATE.match(line)
        if match is None:
            lines.append(line)
        elif match.group(2).lower() == "udp":
            lines.append(
                f"{match.group(1)}{match.group(2)}{match.group(3)}"
                f"{host} {port}{match.group(6)}"
            )
    return separator.join(lines)
