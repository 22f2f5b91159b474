"""The one rate limiter: a token bucket and an interval rule, in Redis when
there is one (so every process sees the same counts) and in this process's
memory otherwise. While Redis is down the memory limiter stands in, so a chat
message is still limited (per process) instead of failing or going unlimited.

Both answer the seconds to wait: 0 when the action may go ahead.
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


class RedisLimiter:
    def __init__(self) -> None:
        self.client = rclient.sync_client()
        self._take = self.client.register_script(BUCKET_TAKE)

    def take_token(self, key: str, *, capacity: float, rate: float) -> float:
        return float(self._take(keys=[rclient.key(key)], args=[capacity, rate]))

    def take_interval(self, key: str, *, seconds: float) -> float:
        full = rclient.key(key)
        millis = max(1, math.ceil(seconds * 1000))
        if self.client.set(full, b"1", nx=True, px=millis):
            return 0.0
        remaining = int(self.client.pttl(full))
        return max(remaining, 1) / 1000


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
