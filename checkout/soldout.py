"""The sold-out marker: which variants have no stock left, shared by every
process through Redis, so a sold-out buyer can be answered before Django runs
(``checkout/guard.py``).

The database stays the only truth about stock; the marker is a hint that is
set only from an observation of ``stock_available == 0`` and cleared after
every commit that gives stock back. Four Redis keys per variant:

* ``…:soldout:<variant>`` — a hash whose fields are the slugs of the shows in
  which the order service answered "sold out" (so the early answer is given
  only where the full path would have reached the stock check). It expires
  after ``MARKER_TTL_SECONDS``: stock that comes back without going through
  checkout (an admin edit, a catalog import) is seen within that time.
* ``…:soldout:<variant>:gen`` — a counter bumped by every stock return. A
  writer reads it *before* it reads the stock and sets the marker only if it
  has not moved, so a "sold out" seen just before a return committed can never
  be written after that return cleared the marker.
* ``…:orderkeys:<variant>`` — the Idempotency-Keys of orders placed on the
  variant in the last day, so a repeated request for an order that exists is
  never answered early: it goes to Django, which returns that order.
* ``…:left:<variant>`` — the units left to *claim*: a hash with ``left`` and a
  field ``s:<slug>`` per show whose orders reached the stock check. The guard
  claims units for a buyer before letting them into Django (``claim``) and
  gives them back if the order took no stock (``give_back``); a buyer who
  finds nothing left to claim is told "sold out" at once, instead of waiting
  for the reservations under way to commit. Seeded from a stock the order
  service or ``sale_start`` read (only if absent, only if no stock returned
  since: ``seen``), deleted by every stock return, and kept for
  ``LEFT_TTL_SECONDS`` after the last claim.

  Why this never refuses a unit nobody will take: let D be the stock in the
  database and P the units claimed by orders that have not yet taken stock.
  A claim lowers ``left`` and raises P; a reservation lowers D and P; a
  give-back raises ``left`` and lowers P; a reservation that entered without a
  claim lowers D alone; a seed sets ``left`` to a stock read since the last
  return, so at least D. So ``left - (D - P)`` never drops below zero, and
  ``left < quantity`` means the stock not already promised to an order under
  way is less than ``quantity``. If one of those orders then fails, its units
  come back as from an expired hold: the room sees ``stock.changed``.

Without ``REDIS_URL`` (the one-process embedded demo) there is no marker and
every request takes the full path.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from realtime import redis as rclient

logger = logging.getLogger(__name__)

# How long a marker lives without being confirmed by the order service.
MARKER_TTL_SECONDS = 10
# How long a process trusts its copy of a marker before asking Redis again:
# stock given back through checkout reaches every process within this time.
REFRESH_SECONDS = 0.05
# How often buyers waiting in the guard look at Redis for a marker another
# process set (the process that sets it wakes its own at once: ``on_marked``).
WAIT_POLL_SECONDS = 0.02
# How long the units left to claim live after the last claim or seed: stock
# added outside checkout (an admin edit, a catalog import) is seen within it.
LEFT_TTL_SECONDS = 30
# How long a claimed order's Idempotency-Key is remembered, so the same Buy
# sent twice is never refused by its own claim.
CLAIM_KEYS_KEEP_SECONDS = 60
# How long an order's Idempotency-Key is remembered for replays.
KEYS_KEEP_SECONDS = 24 * 3600
GEN_TTL_SECONDS = 24 * 3600
# Variants one process keeps copies of (a bound against made-up variant ids).
CACHE_SIZE = 1024

# KEYS: order keys, marker, generation, left. ARGV: idempotency key ("" for
# none), now, keep seconds, "1" to mark, show slug, generation seen, marker
# TTL, stock read ("" for none), left TTL.
MARK = """
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[6] then
  return 0
end
if ARGV[8] ~= '' then
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('HSET', KEYS[4], 'left', ARGV[8])
    redis.call('EXPIRE', KEYS[4], ARGV[9])
  end
  redis.call('HSET', KEYS[4], 's:' .. ARGV[5], '1')
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], ARGV[5], '1')
  redis.call('EXPIRE', KEYS[2], ARGV[7])
  return 1
end
return 0
"""

CLEAR = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return redis.call('DEL', KEYS[1])
"""

# KEYS: left, order keys, claimed keys. ARGV: show slug, quantity, idempotency
# key, now, left TTL, claimed keys' keep seconds. 1: claimed; 0: not enough
# left; -1: unknown here (no seed for this show, or the key is an order's).
CLAIM = """
if redis.call('ZSCORE', KEYS[2], ARGV[3]) or redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  return -1
end
if redis.call('HEXISTS', KEYS[1], 's:' .. ARGV[1]) == 0 then
  return -1
end
local left = tonumber(redis.call('HGET', KEYS[1], 'left') or '0')
if left < tonumber(ARGV[2]) then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'left', -tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[6]))
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 1
"""

# KEYS: left. ARGV: quantity. Never creates the key: a seed after a return
# already counts units that no order took.
GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], 'left', ARGV[1])
end
return -1
"""


def marker_key(variant_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:checkout:soldout:{variant_id}"


def gen_key(variant_id: int) -> str:
    return f"{marker_key(variant_id)}:gen"


def order_keys_key(variant_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:checkout:orderkeys:{variant_id}"


def left_key(variant_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:checkout:left:{variant_id}"


def claimed_keys_key(variant_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:checkout:claimed:{variant_id}"


# --- Writers: the order service, sync ---------------------------------------


def _client() -> Any | None:
    return rclient.sync_client() if rclient.url() else None


# Set by the ASGI guard around an order it let into Django; ``mark`` calls it
# once that order's reservation has committed and its key is recorded.
reservation_committed: ContextVar[Callable[[], None] | None] = ContextVar(
    "reservation_committed", default=None
)

_listeners: list[weakref.WeakMethod[Callable[[int], None]]] = []


def on_marked(listener: Callable[[int], None]) -> None:
    """Call ``listener(variant_id)`` whenever this process marks a variant sold
    out, in the thread that marked it (a bound method, held weakly)."""
    _listeners.append(weakref.WeakMethod(listener))


def _marked(variant_id: int) -> None:
    for ref in list(_listeners):
        listener = ref()
        if listener is None:
            _listeners.remove(ref)
        else:
            listener(variant_id)


def generation(variant_id: int) -> str:
    """The variant's stock-return counter; read it before reading the stock and
    hand it to ``mark``. Empty when there is no Redis or it does not answer."""
    client = _client()
    if client is None:
        return ""
    try:
        value = client.get(gen_key(variant_id))
    except Exception:
        logger.warning("sold-out marker: Redis did not answer", exc_info=True)
        return ""
    return value.decode() if value else "0"


def mark(
    *,
    variant_id: int,
    slug: str,
    seen: str,
    sold_out: bool = True,
    order_key: str = "",
    left: int | None = None,
) -> None:
    """Remember an order's Idempotency-Key, and mark the variant sold out in
    ``slug``'s show if ``sold_out`` and no stock returned since ``seen`` was
    read (an empty ``seen`` never marks). ``left``: the stock just read (after
    this order's reservation, if any), which seeds the units left to claim if
    they are not known, under the same condition. Called after commit, or
    after a read that found no stock. For an order (``order_key``), then
    tells the guard that let it in that its reservation has committed
    (``reservation_committed``)."""
    client = _client()
    if client is None:
        return
    marked = _mark(client, variant_id, slug, seen, sold_out, order_key, left)
    committed = reservation_committed.get() if order_key else None
    if committed is not None:
        committed()
    if marked:
        _marked(variant_id)


def _mark(
    client: Any,
    variant_id: int,
    slug: str,
    seen: str,
    sold_out: bool,
    order_key: str,
    left: int | None,
) -> int:
    try:
        return int(
            client.eval(
                MARK,
                4,
                order_keys_key(variant_id),
                marker_key(variant_id),
                gen_key(variant_id),
                left_key(variant_id),
                order_key,
                f"{time.time():.3f}",
                KEYS_KEEP_SECONDS,
                "1" if sold_out else "0",
                slug,
                seen,
                MARKER_TTL_SECONDS,
                "" if left is None else str(max(left, 0)),
                LEFT_TTL_SECONDS,
            )
        )
    except Exception:
        logger.warning("sold-out marker: Redis did not answer", exc_info=True)
        return 0


def clear(variant_id: int) -> None:
    """Stock of the variant came back: drop its marker everywhere (call after
    commit)."""
    client = _client()
    if client is None:
        return
    try:
        client.eval(
            CLEAR,
            3,
            marker_key(variant_id),
            gen_key(variant_id),
            left_key(variant_id),
            GEN_TTL_SECONDS,
        )
    except Exception:
        # The marker then lives out its TTL; log loudly, buyers are refused.
        logger.error("sold-out marker of variant %s not cleared", variant_id)


# --- Reader: the ASGI guard, async, one copy per process ---------------------


@dataclass(frozen=True)
class Marker:
    """A process's copy of one variant's marker."""

    shows: frozenset[str]
    order_keys: frozenset[str]
    key_count: int
    fetched_at: float
    # The shows with units left to claim (``left_key``) when it was fetched.
    claim_shows: frozenset[str] = frozenset()

    def refuses(self, *, slug: str, order_key: str) -> bool:
        return slug in self.shows and order_key not in self.order_keys

    def claimable(self, slug: str) -> bool:
        """Worth a claim: the units left are counted for this show. A count
        seeded since this copy was fetched is missed for a moment (the order
        goes in unclaimed, which only makes the count too high); one deleted
        since costs a claim that answers "unknown"."""
        return slug in self.claim_shows


NONE = Marker(shows=frozenset(), order_keys=frozenset(), key_count=-1, fetched_at=0)


class MarkerCache:
    """Copies of markers, each at most ``REFRESH_SECONDS`` old, refreshed by one
    Redis round trip that every waiting request shares."""

    def __init__(self) -> None:
        self.markers: dict[int, Marker] = {}
        self.pending: dict[int, asyncio.Future[Marker | None]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis: Any = None
        # After Redis failed to answer, every request takes the full path for
        # a while instead of waiting for Redis again.
        self.down_until = 0.0
        self.background: set[asyncio.Task[None]] = set()

    def _redis(self) -> Any | None:
        if not rclient.url():
            return None
        loop = asyncio.get_running_loop()
        if self.redis is None or self.loop is not loop:
            self.redis = rclient.async_client()
            self.loop = loop
            self.markers.clear()
            self.pending.clear()
        return self.redis

    def down(self) -> bool:
        """Redis failed to answer a moment ago: markers are not looked up."""
        return time.monotonic() < self.down_until

    async def get(self, variant_id: int) -> Marker | None:
        """The variant's marker, or None when it cannot be known (no Redis)."""
        client = self._redis()
        if client is None or time.monotonic() < self.down_until:
            return None
        known = self.markers.get(variant_id)
        if known is not None and time.monotonic() - known.fetched_at < REFRESH_SECONDS:
            return known
        pending = self.pending.get(variant_id)
        if pending is None:
            # A task of its own, so a request that goes away does not cancel
            # the refresh the others wait for.
            pending = asyncio.ensure_future(self._refresh(client, variant_id, known))
            self.pending[variant_id] = pending
        return await asyncio.shield(pending)

    async def claim(
        self, variant_id: int, *, slug: str, order_key: str, quantity: int
    ) -> bool | None:
        """Claim ``quantity`` units for an order about to enter Django: True
        when claimed (give them back with ``give_back`` if the order takes no
        stock), False when fewer are left to claim (sold out), None when that
        is not known here (nothing seeded for this show, the key is an
        order's or a claimed one's, or no Redis)."""
        client = self._redis()
        if client is None or time.monotonic() < self.down_until:
            return None
        # A task of its own: if the request goes away meanwhile, units that
        # were claimed are given back rather than lost.
        task = asyncio.ensure_future(
            client.eval(
                CLAIM,
                3,
                left_key(variant_id),
                order_keys_key(variant_id),
                claimed_keys_key(variant_id),
                slug,
                quantity,
                order_key,
                f"{time.time():.3f}",
                LEFT_TTL_SECONDS,
                CLAIM_KEYS_KEEP_SECONDS,
            )
        )
        try:
            result = int(await asyncio.shield(task))
        except asyncio.CancelledError:

            def abandoned(done: asyncio.Future[Any]) -> None:
                if not done.cancelled() and not done.exception() and done.result() == 1:
                    self.give_back_later(variant_id, quantity)

            task.add_done_callback(abandoned)
            raise
        except Exception:
            logger.warning("sold-out claim: Redis did not answer", exc_info=True)
            self.down_until = time.monotonic() + 1.0
            return None
        return None if result < 0 else result == 1

    def give_back_later(self, variant_id: int, quantity: int) -> None:
        """``give_back`` in a task of its own (for a request being cancelled)."""
        task = asyncio.ensure_future(self.give_back(variant_id, quantity))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def give_back(self, variant_id: int, quantity: int) -> None:
        """Return units claimed for an order that took no stock."""
        client = self._redis()
        if client is None:
            return
        try:
            await client.eval(GIVE_BACK, 1, left_key(variant_id), quantity)
        except Exception:
            # Buyers may be told "sold out" too early until the count expires
            # (LEFT_TTL_SECONDS after the last claim) or stock returns.
            logger.error("units claimed of variant %s not given back", variant_id)

    def forget(self, variant_id: int) -> None:
        """Refetch the variant's marker on the next look (a fetch under way
        may predate what made us ask)."""
        known = self.markers.get(variant_id)
        if known is not None:
            self.markers[variant_id] = replace(known, fetched_at=0)
        self.pending.pop(variant_id, None)

    async def _refresh(
        self, client: Any, variant_id: int, known: Marker | None
    ) -> Marker | None:
        this = asyncio.current_task()
        try:
            fresh = await self._fetch(client, variant_id, known or NONE)
        except Exception:
            logger.warning("sold-out marker: Redis did not answer", exc_info=True)
            self.down_until = time.monotonic() + 1.0
            return None
        finally:
            if self.pending.get(variant_id) is this:
                del self.pending[variant_id]
            else:
                this = None
        if this is None:
            # Forgotten meanwhile: answer the requests that waited for this
            # fetch, but keep it out of the cache.
            return fresh
        if len(self.markers) >= CACHE_SIZE:
            self.markers.clear()
        self.markers[variant_id] = fresh
        return fresh

    async def _fetch(self, client: Any, variant_id: int, known: Marker) -> Marker:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hkeys(marker_key(variant_id))
            pipe.zcard(order_keys_key(variant_id))
            pipe.hkeys(left_key(variant_id))
            shows, count, counted = await pipe.execute()
        keys = known.order_keys
        if shows and count != known.key_count:
            # Only a sold-out variant needs its order keys, and only when
            # they changed.
            keys = frozenset(
                k.decode()
                for k in await client.zrange(order_keys_key(variant_id), 0, -1)
            )
        return Marker(
            shows=frozenset(s.decode() for s in shows),
            order_keys=keys,
            key_count=int(count) if shows else -1,
            fetched_at=time.monotonic(),
            claim_shows=frozenset(
                field.decode()[2:] for field in counted if field.startswith(b"s:")
            ),
        )


markers = MarkerCache()
