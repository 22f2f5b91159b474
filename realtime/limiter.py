"""The one rate limiter: a token bucket, an interval rule and a counted window,
in Redis when there is one (so every process sees the same counts) and in this
process's memory otherwise. While Redis is down the memory limiter stands in,
so a chat message is still limited (per process) instead of failing or going
unlimited.

Each answers the seconds to wait: 0 when the action may go ahead.
"""

from __future__ import annotations

import math
import threading
import time

from realtime import redis as rclient

# ARGV capacity, refill per second. Returns "0" when a token was taken,
# otherwise the seconds until one is available (as a string: Lua numbers
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

# ARGV limit, window in milliseconds. Counts one try in the window that starts
# with the first; a try past the limit is not counted. Returns "0" when the try
# was counted, otherwise the seconds until the window ends.
WINDOW_TAKE = """
local limit = tonumber(ARGV[1])
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if n <= limit then
  return '0'
end
redis.call('DECR', KEYS[1])
return tostring(ttl / 1000)
"""

# Gives back one counted try, if its window has not ended meanwhile.
WINDOW_GIVE_BACK = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""


class Bucket:
    """One token bucket in memory (the same rule as ``BUCKET_TAKE``): a socket
    holds one of its own for reactions; ``MemoryLimiter`` holds one per key."""

    __slots__ = ("tokens", "ts")

    def __init__(self, capacity: float) -> None:
        self.tokens = capacity
        self.ts = time.monotonic()

    def take(self, *, capacity: float, rate: float) -> float:
        """Take a token; the seconds until one is available, or 0."""
        now = time.monotonic()
        self.tokens = min(capacity, self.tokens + max(0.0, now - self.ts) * rate)
        self.ts = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


class MemoryLimiter:
    """Per process; also what stands in while Redis is down."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, Bucket] = {}
        self.intervals: dict[str, float] = {}
        self.windows: dict[str, tuple[int, float]] = {}

    def take_token(self, key: str, *, capacity: float, rate: float) -> float:
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                if len(self.buckets) > self.MAX_KEYS:
                    self.buckets.clear()
                bucket = self.buckets[key] = Bucket(capacity)
            return bucket.take(capacity=capacity, rate=rate)

    def take_interval(self, key: str, *, seconds: float) -> float:
        now = time.monotonic()
        with self.lock:
            if len(self.intervals) > self.MAX_KEYS:
                self.intervals = {k: v for k, v in self.intervals.items() if v > now}
            until = self.intervals.get(key, 0.0)
            if until > now:
                return until - now
            self.intervals[key] = now + seconds
            return 0.0

    def take_window(self, key: str, *, limit: int, seconds: float) -> float:
        now = time.monotonic()
        with self.lock:
            if len(self.windows) > self.MAX_KEYS:
                self.windows = {k: v for k, v in self.windows.items() if v[1] > now}
            count, until = self.windows.get(key, (0, now + seconds))
            if until <= now:
                count, until = 0, now + seconds
            if count >= limit:
                return until - now
            self.windows[key] = (count + 1, until)
            return 0.0

    def give_back_window(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            count, until = self.windows.get(key, (0, now))
            if count > 0 and until > now:
                self.windows[key] = (count - 1, until)


class RedisLimiter:
    def __init__(self) -> None:
        self.client = rclient.sync_client()
        self._take = self.client.register_script(BUCKET_TAKE)
        self._window_take = self.client.register_script(WINDOW_TAKE)
        self._window_give_back = self.client.register_script(WINDOW_GIVE_BACK)

    def take_token(self, key: str, *, capacity: float, rate: float) -> float:
        return float(self._take(keys=[rclient.key(key)], args=[capacity, rate]))

    def take_interval(self, key: str, *, seconds: float) -> float:
        full = rclient.key(key)
        millis = max(1, math.ceil(seconds * 1000))
        if self.client.set(full, b"1", nx=True, px=millis):
            return 0.0
        remaining = int(self.client.pttl(full))
        return max(remaining, 1) / 1000

    def take_window(self, key: str, *, limit: int, seconds: float) -> float:
        millis = max(1, math.ceil(seconds * 1000))
        return float(self._window_take(keys=[rclient.key(key)], args=[limit, millis]))

    def give_back_window(self, key: str) -> None:
        self._window_give_back(keys=[rclient.key(key)])


_memory = MemoryLimiter()
_redis: dict[str, RedisLimiter] = {}
_lock = threading.Lock()


def _redis_limiter() -> RedisLimiter | None:
    target = rclient.url()
    if not target or rclient.is_down():
        return None
    with _lock:
        limiter = _redis.get(target)
        if limiter is None:
            limiter = _redis[target] = RedisLimiter()
        return limiter


def take_token(key: str, *, capacity: float, rate: float) -> float:
    """Take one token from the bucket ``key`` (``capacity`` tokens, refilled
    at ``rate`` per second); the seconds until one is available, or 0."""
    limiter = _redis_limiter()
    if limiter is not None:
        try:
            return limiter.take_token(key, capacity=capacity, rate=rate)
        except rclient.ERRORS:
            rclient.mark_down()
    return _memory.take_token(key, capacity=capacity, rate=rate)


def take_interval(key: str, *, seconds: float) -> float:
    """Allow one action per ``seconds`` under ``key``; the seconds left, or 0."""
    limiter = _redis_limiter()
    if limiter is not None:
        try:
            return limiter.take_interval(key, seconds=seconds)
        except rclient.ERRORS:
            rclient.mark_down()
    return _memory.take_interval(key, seconds=seconds)


def take_window(key: str, *, limit: int, seconds: float) -> float:
    """Count one try under ``key``, at most ``limit`` in a window of
    ``seconds`` that starts with the first try; the seconds until the window
    ends when the limit is reached (that try is not counted), or 0.

    The count and the check are one step (one Redis script), so concurrent
    tries cannot pass the limit. Take before the action and ``give_back_window``
    when it turns out not to count (a right access code)."""
    limiter = _redis_limiter()
    if limiter is not None:
        try:
            return limiter.take_window(key, limit=limit, seconds=seconds)
        except rclient.ERRORS:
            rclient.mark_down()
    return _memory.take_window(key, limit=limit, seconds=seconds)


def give_back_window(key: str) -> None:
    """Un-count one try taken with ``take_window`` (nothing once its window
    has ended)."""
    limiter = _redis_limiter()
    if limiter is not None:
        try:
            limiter.give_back_window(key)
            return
        except rclient.ERRORS:
            rclient.mark_down()
    _memory.give_back_window(key)
