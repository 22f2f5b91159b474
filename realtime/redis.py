"""The one module that creates Redis clients.

Every client has short timeouts: Redis is the fast path for fan-out, rate limits
and presence, never the truth, so a stopped Redis must answer "down" in well
under a second instead of holding a request or a handshake. After a failure the
process treats Redis as down for ``DOWN_SECONDS`` (``is_down``), so a request
path that can do without it (a rate limit falls back to this process's memory,
an event stays in the outbox for the relay) does not wait for it again meanwhile.

- ``sync_client()``: one per URL, for services and the outbox relay (threads).
- ``async_client()``: one per event loop, a blocking pool shared by the loop's
  commands, so a crowd connecting at once waits for a connection instead of
  failing (redis-py's default pool raises past its size).
- ``async_subscriber()``: one per event loop, for pub/sub connections (each show
  with local viewers holds one).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

CONNECT_TIMEOUT_SECONDS = 0.5
COMMAND_TIMEOUT_SECONDS = 1.0
DOWN_SECONDS = 1.0
ASYNC_COMMAND_CONNECTIONS = 32
ASYNC_WAIT_SECONDS = 10
SUBSCRIPTIONS_MAX = 100_000

_sync: dict[str, Any] = {}
_lock = threading.Lock()
_down_until = 0.0
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def url() -> str:
    """``REDIS_URL`` as configured now ("" without Redis: the embedded demo)."""
    return str(settings.REDIS_URL or "")


def prefix() -> str:
    """The prefix of every key and channel this deployment writes."""
    return str(settings.REDIS_PREFIX)


def key(*parts: object) -> str:
    return ":".join([prefix(), *(str(part) for part in parts)])


def mark_down() -> None:
    """Record that Redis just failed to answer."""
    global _down_until
    _down_until = time.monotonic() + DOWN_SECONDS


def is_down() -> bool:
    return time.monotonic() < _down_until


# What a client raises when Redis is unreachable or too slow.
ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
)


def sync_client() -> Any:
    """The process's synchronous client for the configured URL."""
    target = url()
    with _lock:
        client = _sync.get(target)
        if client is None:
            client = _sync[target] = redis.Redis.from_url(
                target,
                socket_timeout=COMMAND_TIMEOUT_SECONDS,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                health_check_interval=30,
            )
        return client


def _loop_clients() -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    clients = _async.get(loop)
    if clients is None or clients.get("url") != url():
        clients = _async[loop] = {"url": url()}
    return clients


def async_client() -> Any:
    """The running loop's client for commands (seq reads, presence, slots)."""
    clients = _loop_clients()
    if "commands" not in clients:
        clients["commands"] = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url(),
                max_connections=ASYNC_COMMAND_CONNECTIONS,
                timeout=ASYNC_WAIT_SECONDS,
                socket_timeout=COMMAND_TIMEOUT_SECONDS,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            )
        )
    return clients["commands"]


def async_subscriber() -> Any:
    """The running loop's client for pub/sub connections (no read timeout: a
    subscription waits for messages)."""
    clients = _loop_clients()
    if "subscriber" not in clients:
        clients["subscriber"] = aioredis.Redis.from_url(
            url(),
            max_connections=SUBSCRIPTIONS_MAX,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            health_check_interval=5,
        )
    return clients["subscriber"]


async def aclose_loop_clients() -> None:
    """Close the running loop's clients (a hub stopping)."""
    loop = asyncio.get_running_loop()
    clients = _async.pop(loop, None) or {}
    for name in ("commands", "subscriber"):
        client = clients.get(name)
        if client is not None:
            # Closing a client of a dead server.
            with contextlib.suppress(Exception):
                await client.aclose()
