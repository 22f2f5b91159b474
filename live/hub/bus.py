"""The sync side of the room bus: publishing after commit, sequence numbers,
the replay log and per-user counters.

With ``REDIS_URL`` set every process shares Redis: a persisted event gets its
per-show ``seq`` from ``INCR``, is appended to a capped stream (``XADD`` with the
seq as its id, so a resume is an ``XRANGE``) and published on the show's channel,
all in one Lua script, so the log order, the seq order and the publish order are
the same for every process. Without Redis (the embedded demo) one in-process bus
does the same with a lock and a deque and hands events to the hub's event loop.

Messages on a show channel are text: ``E<event json>`` for the whole room,
``P<recipient>\\n<event json>`` for one audience member. The control channel
carries JSON commands for every process (``{"op": "kick", ...}``).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings

Event = dict[str, Any]

LOG_LENGTH = 1000
LOG_TTL_SECONDS = 3 * 24 * 3600

PUBLISH_PERSISTED = """
local seq = redis.call('INCR', KEYS[1])
local payload = '{"seq":' .. seq .. ',' .. ARGV[1]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', payload)
redis.call('PUBLISH', KEYS[3], 'E' .. payload)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return seq
"""

# A token bucket: ARGV capacity, refill per second. Returns "0" when a token was
# taken, otherwise the seconds until one is available (as a string: Lua numbers
# become integers in replies).
BUCKET_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
  return '0'
end
return tostring((1 - tokens) / rate)
"""


def json_body(event: Event) -> str:
    """``event`` as compact JSON (UTF-8 kept as is)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def prefix() -> str:
    return str(settings.REDIS_PREFIX)


def room_channel(show_id: int) -> str:
    return f"{prefix()}:room:{show_id}"


def control_channel() -> str:
    return f"{prefix()}:control"


def seq_key(show_id: int) -> str:
    return f"{prefix()}:room:{show_id}:seq"


def log_key(show_id: int) -> str:
    return f"{prefix()}:room:{show_id}:log"


def private_frame(recipient: str, event: Event) -> str:
    return f"P{recipient}\n{json_body(event)}"


class Bus(Protocol):
    def publish_persisted(self, show_id: int, event: Event) -> int: ...
    def publish_raw(self, show_id: int, data: str) -> None: ...
    def control(self, command: dict[str, Any]) -> None: ...
    def take_token(self, key: str, *, capacity: float, rate: float) -> float: ...
    def take_interval(self, key: str, *, seconds: float) -> float: ...


class RedisBus:
    """Publishing from sync code (services, after commit) through Redis."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url)
        self._publish = self.client.register_script(PUBLISH_PERSISTED)
        self._take = self.client.register_script(BUCKET_TAKE)

    def publish_persisted(self, show_id: int, event: Event) -> int:
        body = json_body(event)
        if not body.startswith("{") or body == "{}":
            raise ValueError("An event is a non-empty JSON object.")
        seq = self._publish(
            keys=[seq_key(show_id), log_key(show_id), room_channel(show_id)],
            args=[body[1:], LOG_LENGTH, LOG_TTL_SECONDS],
        )
        return int(seq)

    def publish_raw(self, show_id: int, data: str) -> None:
        self.client.publish(room_channel(show_id), data)

    def control(self, command: dict[str, Any]) -> None:
        self.client.publish(control_channel(), json_body(command))

    def take_token(self, key: str, *, capacity: float, rate: float) -> float:
        wait = self._take(keys=[f"{prefix()}:{key}"], args=[capacity, rate])
        return float(wait)

    def take_interval(self, key: str, *, seconds: float) -> float:
        full = f"{prefix()}:{key}"
        millis = max(1, math.ceil(seconds * 1000))
        if self.client.set(full, b"1", nx=True, px=millis):
            return 0.0
        remaining = int(self.client.pttl(full))
        return max(remaining, 1) / 1000


Deliver = Callable[[int, str], None]


class MemoryBus:
    """One process, no Redis: the embedded demo and tests without Redis."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seqs: dict[int, int] = {}
        self.logs: dict[int, deque[tuple[int, str]]] = {}
        self.subscribers: list[tuple[asyncio.AbstractEventLoop, Deliver]] = []
        self.control_subscribers: list[
            tuple[asyncio.AbstractEventLoop, Callable[[dict[str, Any]], None]]
        ] = []
        self.tokens: dict[str, tuple[float, float]] = {}
        self.intervals: dict[str, float] = {}

    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Deliver,
        control: Callable[[dict[str, Any]], None],
    ) -> None:
        with self.lock:
            self.subscribers.append((loop, deliver))
            self.control_subscribers.append((loop, control))

    def unsubscribe(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:
            self.subscribers = [s for s in self.subscribers if s[0] is not loop]
            self.control_subscribers = [
                s for s in self.control_subscribers if s[0] is not loop
            ]

    def _deliver(self, show_id: int, data: str) -> None:
        for loop, deliver in self.subscribers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(deliver, show_id, data)

    def publish_persisted(self, show_id: int, event: Event) -> int:
        body = json_body(event)
        with self.lock:
            seq = self.seqs.get(show_id, 0) + 1
            self.seqs[show_id] = seq
            payload = f'{{"seq":{seq},{body[1:]}'
            self.logs.setdefault(show_id, deque(maxlen=LOG_LENGTH)).append(
                (seq, payload)
            )
            # Under the lock, so every loop sees the events in seq order.
            self._deliver(show_id, "E" + payload)
        return seq

    def publish_raw(self, show_id: int, data: str) -> None:
        with self.lock:
            self._deliver(show_id, data)

    def control(self, command: dict[str, Any]) -> None:
        with self.lock:
            for loop, handle in self.control_subscribers:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(handle, command)

    def current_seq(self, show_id: int) -> int:
        with self.lock:
            return self.seqs.get(show_id, 0)

    def log_since(self, show_id: int, since: int) -> list[tuple[int, str]]:
        with self.lock:
            return [item for item in self.logs.get(show_id, ()) if item[0] > since]

    def take_token(self, key: str, *, capacity: float, rate: float) -> float:
        now = time.monotonic()
        with self.lock:
            tokens, ts = self.tokens.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - ts) * rate)
            if tokens >= 1:
                self.tokens[key] = (tokens - 1, now)
                return 0.0
            self.tokens[key] = (tokens, now)
            return (1 - tokens) / rate

    def take_interval(self, key: str, *, seconds: float) -> float:
        now = time.monotonic()
        with self.lock:
            until = self.intervals.get(key, 0.0)
            if until > now:
                return until - now
            self.intervals[key] = now + seconds
            return 0.0


_memory_bus = MemoryBus()
_redis_buses: dict[str, RedisBus] = {}
_redis_lock = threading.Lock()


def memory_bus() -> MemoryBus:
    return _memory_bus


def get_bus() -> Bus:
    """The bus for the current settings (read at call time)."""
    url = str(settings.REDIS_URL or "")
    if not url:
        return _memory_bus
    with _redis_lock:
        bus = _redis_buses.get(url)
        if bus is None:
            bus = _redis_buses[url] = RedisBus(url)
        return bus
