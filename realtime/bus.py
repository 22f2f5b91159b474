"""The sync side of the room bus: what the outbox relay publishes through.

With ``REDIS_URL`` set every process shares Redis. A persisted event (one with a
``seq``, given by the outbox in the transaction that wrote it) is appended to a
capped stream per show (``XADD`` with the seq as its id, so a resume is an
``XRANGE``) and published on the show's channel, by one Lua script that also
keeps the show's last published seq: an event at or below it is a repeat and is
skipped, so a relay that publishes twice (it crashed before recording the first
time, or two processes swept the same event) publishes once. Without Redis (the
embedded demo) one in-process bus does the same with a lock and a deque and
hands events to the hubs' event loops.

Messages on a show channel are text: ``E<event json>`` for the whole room,
``P<recipient>\\n<event json>`` for one audience member. The control channel
carries JSON commands for every process (``{"op": "kick", ...}``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from realtime import redis as rclient
from realtime.lifetime import current as current_lifetime

Event = dict[str, Any]

LOG_LENGTH = 1000
LOG_TTL_SECONDS = 3 * 24 * 3600

# What publishing a persisted event did.
PUBLISHED = 1
REPEATED = 0  # at or below the last published seq: already out
EARLY = -1  # an earlier seq of the show is not published yet

# KEYS: last published seq, log, channel. ARGV: seq, event json, log length,
# ttl, strict. Strict (right after commit): an unknown last seq (a new Redis
# lifetime) is EARLY but for a show's first event, so the relay's sweep, which
# publishes every show's pending events in order, sets where a lifetime starts.
PUBLISH_EVENT = """
local last = tonumber(redis.call('GET', KEYS[1]))
local seq = tonumber(ARGV[1])
if last == nil then
  if ARGV[5] == '1' and seq > 1 then return -1 end
elseif seq <= last then
  return 0
elseif seq > last + 1 then
  return -1
end
redis.call('SET', KEYS[1], seq, 'EX', ARGV[4])
pcall(redis.call, 'XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[3], 'E' .. ARGV[2])
return 1
"""


def json_body(event: Event) -> str:
    """``event`` as compact JSON (UTF-8 kept as is)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def with_seq(seq: int, event: Event) -> str:
    """The event's JSON with ``seq`` first (``seq_of`` reads it from there)."""
    return body_with_seq(seq, event_body(event))


def event_body(event: Event) -> str:
    """The event's JSON, checked to be a non-empty object."""
    body = json_body(event)
    if not body.startswith("{") or body == "{}":
        raise ValueError("An event is a non-empty JSON object.")
    return body


def body_with_seq(seq: int, body: str) -> str:
    """``event_body``'s JSON with ``seq`` first."""
    return f'{{"seq":{seq},{body[1:]}'


def seq_of(payload: str) -> int | None:
    """The seq of a persisted event's JSON (it always starts with it)."""
    if payload.startswith('{"seq":'):
        return int(payload[7 : payload.index(",", 7)])
    return None


def room_channel(show_id: int) -> str:
    return rclient.key("room", show_id)


def control_channel() -> str:
    return rclient.key("control")


def published_key(show_id: int, lifetime: str) -> str:
    """The show's last published seq in the database lifetime ``lifetime``
    (``realtime.lifetime``: seqs of a database created afresh start again)."""
    return rclient.key("room", show_id, lifetime, "published")


def log_key(show_id: int, lifetime: str) -> str:
    return rclient.key("room", show_id, lifetime, "log")


def private_frame(recipient: str, event: Event) -> str:
    return f"P{recipient}\n{json_body(event)}"


class Bus(Protocol):
    def publish_event(
        self, show_id: int, seq: int, payload: str, *, strict: bool
    ) -> int: ...
    def publish(self, show_id: int, data: str) -> None: ...
    def control(self, command: str) -> None: ...
    def forget_published(self, show_id: int) -> None:
        """Forget the show's last published seq (the next event sets it)."""


class RedisBus:
    """Publishing from sync code (the relay, after commit) through Redis."""

    def __init__(self) -> None:
        self.client = rclient.sync_client()
        self._publish = self.client.register_script(PUBLISH_EVENT)

    def publish_event(
        self, show_id: int, seq: int, payload: str, *, strict: bool
    ) -> int:
        lifetime = current_lifetime()
        return int(
            self._publish(
                keys=[
                    published_key(show_id, lifetime),
                    log_key(show_id, lifetime),
                    room_channel(show_id),
                ],
                args=[seq, payload, LOG_LENGTH, LOG_TTL_SECONDS, int(strict)],
            )
        )

    def publish(self, show_id: int, data: str) -> None:
        self.client.publish(room_channel(show_id), data)

    def control(self, command: str) -> None:
        self.client.publish(control_channel(), command)

    def forget_published(self, show_id: int) -> None:
        self.client.delete(published_key(show_id, current_lifetime()))


Deliver = Callable[[str], None]


class MemoryBus:
    """One process, no Redis: the embedded demo and tests without Redis.
    Subscribers are (event loop, callback) per show, called on their loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published: dict[int, int] = {}
        self.logs: dict[int, deque[tuple[int, str]]] = {}
        self.rooms: dict[int, list[tuple[asyncio.AbstractEventLoop, Deliver]]] = {}
        self.controls: list[tuple[asyncio.AbstractEventLoop, Deliver]] = []

    # -- subscribing (the hub's memory backend) -----------------------------

    def subscribe(
        self, show_id: int, loop: asyncio.AbstractEventLoop, deliver: Deliver
    ) -> None:
        with self.lock:
            self.rooms.setdefault(show_id, []).append((loop, deliver))

    def unsubscribe(self, show_id: int, deliver: Deliver) -> None:
        with self.lock:
            kept = [s for s in self.rooms.get(show_id, []) if s[1] is not deliver]
            if kept:
                self.rooms[show_id] = kept
            else:
                self.rooms.pop(show_id, None)

    def listen_control(self, loop: asyncio.AbstractEventLoop, handle: Deliver) -> None:
        with self.lock:
            self.controls.append((loop, handle))

    def unlisten_control(self, handle: Deliver) -> None:
        with self.lock:
            self.controls = [s for s in self.controls if s[1] is not handle]

    @staticmethod
    def _call(
        targets: list[tuple[asyncio.AbstractEventLoop, Deliver]], data: str
    ) -> None:
        for loop, deliver in targets:
            if not loop.is_closed():
                loop.call_soon_threadsafe(deliver, data)

    # -- publishing ---------------------------------------------------------

    def publish_event(
        self, show_id: int, seq: int, payload: str, *, strict: bool
    ) -> int:
        with self.lock:
            last = self.published.get(show_id)
            if last is None and strict and seq > 1:
                return EARLY
            if last is not None:
                if seq <= last:
                    return REPEATED
                if seq > last + 1:
                    return EARLY
            self.published[show_id] = seq
            self.logs.setdefault(show_id, deque(maxlen=LOG_LENGTH)).append(
                (seq, payload)
            )
            # Under the lock, so every loop sees the events in seq order.
            self._call(self.rooms.get(show_id, []), "E" + payload)
        return PUBLISHED

    def publish(self, show_id: int, data: str) -> None:
        with self.lock:
            self._call(self.rooms.get(show_id, []), data)

    def control(self, command: str) -> None:
        with self.lock:
            self._call(self.controls, command)

    def forget_published(self, show_id: int) -> None:
        with self.lock:
            self.published.pop(show_id, None)

    # -- reading (resume) ---------------------------------------------------

    def published_seq(self, show_id: int) -> int | None:
        with self.lock:
            return self.published.get(show_id)

    def log_since(self, show_id: int, since: int) -> list[tuple[int, str]]:
        with self.lock:
            return [item for item in self.logs.get(show_id, ()) if item[0] > since]


_memory_bus = MemoryBus()


def memory_bus() -> MemoryBus:
    return _memory_bus


_redis_buses: dict[str, RedisBus] = {}
_lock = threading.Lock()


def get_bus() -> Bus:
    """The bus for the current settings (read at call time)."""
    target = rclient.url()
    if not target:
        return _memory_bus
    with _lock:
        bus = _redis_buses.get(target)
        if bus is None:
            bus = _redis_buses[target] = RedisBus()
        return bus
