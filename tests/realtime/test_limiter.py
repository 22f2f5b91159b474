"""The one rate limiter: a token bucket and an interval rule, in Redis, or in
this process's memory without Redis and while Redis is down."""

from __future__ import annotations

import pytest

from realtime import limiter
from realtime import redis as rclient


def test_a_bucket_gives_its_burst_then_says_how_long_to_wait():
    bucket = limiter.Bucket(3)
    assert [bucket.take(capacity=3, rate=1.0) for _ in range(3)] == [0.0] * 3
    wait = bucket.take(capacity=3, rate=1.0)
    assert 0.9 < wait <= 1.0


def test_redis_counts_one_bucket_for_every_process(redis_client):
    takes = [limiter.take_token("test:shared", capacity=2, rate=0.01) for _ in range(3)]
    assert takes[:2] == [0.0, 0.0]
    assert takes[2] > 0
    # Another process's memory knows nothing of it; Redis does.
    assert limiter._memory.take_token("test:shared", capacity=2, rate=0.01) == 0.0
    assert limiter.take_interval("test:slow", seconds=30) == 0.0
    assert 29 < limiter.take_interval("test:slow", seconds=30) <= 30


@pytest.mark.slow
def test_with_redis_down_the_limit_still_holds_in_memory(own_redis, settings):
    settings.REDIS_URL = own_redis.url
    own_redis.kill()
    takes = [limiter.take_token("test:down", capacity=2, rate=0.01) for _ in range(3)]
    assert rclient.is_down()
    assert takes[:2] == [0.0, 0.0]
    assert takes[2] > 0
