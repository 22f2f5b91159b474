"""Counting what happens in a show, at almost no cost to the live room
(docs/analytics.md).

Apps count as things happen::

    counting.add(show_id, "chat")                      # a sum, per show and minute
    counting.add(show_id, "holds", products={12: 1})   # ... and per product
    counting.unique(show_id, "viewers", who)           # HyperLogLog uniques
    counting.peak(show_id, "viewers", n)               # a maximum, and "now"

Nothing on that path touches PostgreSQL or waits: a call adds to this
process's memory under a lock. A thread flushes that memory once a second
(``FLUSH_SECONDS``) to the store in one round trip: with Redis, one pipeline of
``HINCRBY`` into a hash per show and minute and one per show (the totals),
``PFADD`` into a HyperLogLog per show and per show-minute, and a small Lua
script for maxima; without Redis (the embedded demo) a store in this process's
memory with the same meaning. What is counted is visible to every process
within about a second.

Identities never leave the process: ``unique`` hashes what it is given with a
key derived from ``SECRET_KEY`` and the show (``visitor_key``), so the same
person has unrelated keys in two shows, and the store only holds HyperLogLog
registers. Callers pass a per-connection random value for a viewer who asked
not to be tracked (``Do Not Track`` or ``Global Privacy Control``).

While Redis is down the flush keeps what it could not write, up to
``KEEP_MAX`` entries, and writes it once Redis answers again (counts land in
the minute they happened); past that bound new counts are dropped and the
number dropped is logged at WARNING when Redis is back.

``rollup()`` (run by the sweeper) copies closed minutes from the store into
PostgreSQL as absolute values (``ShowMinuteCount``, an upsert of the minute's
value, never an increment), and each show's uniques into ``ShowTotalCount``:
running it twice, or after late counts arrived, writes the same rows again.
Store keys expire ``KEEP_SECONDS`` (48 h) after their last write.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from django.conf import settings
from django.db import close_old_connections

from realtime import redis as rclient

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
KEEP_SECONDS = 48 * 3600
# A "now" value (viewers now) nobody refreshed for this long is gone.
NOW_SECONDS = 5
# Entries (sums, maxima and unique keys) kept while the store is unreachable.
KEEP_MAX = 200_000
# A minute is closed (and rolled up) this long after it ended: every
# process's flush of it has landed by then, unless the store was down.
CLOSE_GRACE_SECONDS = 3
ROLLUP_SECONDS = 15.0
ROLLUP_BATCH = 500

# KEYS: minute hash, totals hash. ARGV: field, value. Keeps the larger value.
MAX_SCRIPT = """
for i = 1, 2 do
  local old = tonumber(redis.call('HGET', KEYS[i], ARGV[1]))
  if old == nil or tonumber(ARGV[2]) > old then
    redis.call('HSET', KEYS[i], ARGV[1], ARGV[2])
  end
end
return 1
"""


def minute_of(moment: float) -> int:
    """The minute (epoch seconds // 60) a moment falls in."""
    return int(moment) // 60


def product_field(product: int, metric: str) -> str:
    """The field a per-product count is kept under."""
    return f"p{product}.{metric}"


@functools.lru_cache(maxsize=1024)
def _salt(secret: str, show_id: int) -> bytes:
    return hmac.new(
        secret.encode(), f"showfloor.counting:{show_id}".encode(), hashlib.sha256
    ).digest()


def visitor_key(show_id: int, who: str) -> str:
    """A salted hash of ``who`` for this show only (the salt is derived from
    ``SECRET_KEY`` and the show, so keys of two shows are unrelated)."""
    salt = _salt(str(settings.SECRET_KEY), show_id)
    return hashlib.blake2b(who.encode(), key=salt, digest_size=8).hexdigest()


def wants_privacy(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when a request's headers ask not to be tracked (``DNT: 1`` or
    ``Sec-GPC: 1``)."""
    for name, value in headers:
        if name.lower() in (b"dnt", b"sec-gpc") and value.strip() == b"1":
            return True
    return False


# --- This process's counts, until the next flush ----------------------------


@dataclass
class Batch:
    sums: dict[tuple[int, int, str], int] = field(default_factory=dict)
    # (show, minute or None for the whole show, metric) -> hashed keys
    uniques: dict[tuple[int, int | None, str], set[str]] = field(default_factory=dict)
    peaks: dict[tuple[int, int, str], int] = field(default_factory=dict)
    now: dict[tuple[int, str], int] = field(default_factory=dict)

    def size(self) -> int:
        return (
            len(self.sums)
            + len(self.peaks)
            + sum(len(keys) for keys in self.uniques.values())
        )

    def merge(self, other: Batch) -> None:
        """Fold ``other`` (counted after this batch) in."""
        for key, n in other.sums.items():
            self.sums[key] = self.sums.get(key, 0) + n
        for ukey, keys in other.uniques.items():
            self.uniques.setdefault(ukey, set()).update(keys)
        for key, n in other.peaks.items():
            if n > self.peaks.get(key, n - 1):
                self.peaks[key] = n
        self.now.update(other.now)


class Counter:
    """The process's counts and the thread that flushes them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batch = Batch()
        self.kept: Batch | None = None
        self.dropped = 0
        self.enabled = _enabled_now()
        self.thread: threading.Thread | None = None
        self.wakeup = threading.Event()
        self.stopping = False
        self.at_exit = False
        self.flushes = 0

    # -- the hot path -----------------------------------------------------

    def add(
        self,
        show_id: int,
        metric: str,
        n: int,
        products: Mapping[int, int] | None,
        at: float | None,
    ) -> None:
        minute = minute_of(time.time() if at is None else at)
        with self.lock:
            sums = self.batch.sums
            if n:
                key = (show_id, minute, metric)
                sums[key] = sums.get(key, 0) + n
            if products:
                for product, value in products.items():
                    pkey = (show_id, minute, product_field(product, metric))
                    sums[pkey] = sums.get(pkey, 0) + value
        self._started()

    def unique(
        self, show_id: int, metric: str, key: str, whole_show: bool, at: float | None
    ) -> None:
        minute = minute_of(time.time() if at is None else at)
        with self.lock:
            uniques = self.batch.uniques
            uniques.setdefault((show_id, minute, metric), set()).add(key)
            if whole_show:
                uniques.setdefault((show_id, None, metric), set()).add(key)
        self._started()

    def peak(self, show_id: int, metric: str, n: int, at: float | None) -> None:
        minute = minute_of(time.time() if at is None else at)
        with self.lock:
            key = (show_id, minute, metric)
            if n > self.batch.peaks.get(key, -1):
                self.batch.peaks[key] = n
            self.batch.now[(show_id, metric)] = n
        self._started()

    # -- the flush --------------------------------------------------------

    def _started(self) -> None:
        if self.thread is None:
            self.start()

    def start(self) -> None:
        with self.lock:
            if self.stopping or (self.thread is not None and self.thread.is_alive()):
                return
            self.thread = threading.Thread(
                target=self._run, name="counting-flush", daemon=True
            )
            self.thread.start()
            if not self.at_exit:
                # A process that stops normally (SIGTERM to Daphne) writes
                # its last second of counts.
                self.at_exit = True
                atexit.register(self._last_flush)

    def _last_flush(self) -> None:
        with contextlib.suppress(Exception):
            self.flush()

    def stop(self) -> None:
        """Flush once more and stop the thread (a test; a process that stops)."""
        with self.lock:
            thread, self.thread = self.thread, None
            self.stopping = True
        self.wakeup.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self.stopping:
            self.wakeup.wait(FLUSH_SECONDS)
            self.wakeup.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("counting: flush failed")

    def flush(self) -> int:
        """Write what was counted since the last flush (and what an outage
        kept) to the store; the number of entries written."""
        self.enabled = _enabled_now()
        with self.lock:
            batch, self.batch = self.batch, Batch()
            if self.kept is not None:
                kept, self.kept = self.kept, None
                kept.merge(batch)
                batch = kept
        if not batch.size() and not batch.now:
            return 0
        self.flushes += 1
        store = get_store()
        if isinstance(store, RedisStore) and rclient.is_down():
            self._keep(batch)
            return 0
        try:
            store.apply(batch)
        except rclient.ERRORS as exc:
            rclient.mark_down()
            logger.warning("counting: Redis unavailable (%s); counts kept", exc)
            self._keep(batch)
            return 0
        if self.dropped:
            logger.warning(
                "counting: %s counts were dropped while Redis was down", self.dropped
            )
            self.dropped = 0
        return batch.size()

    def _keep(self, batch: Batch) -> None:
        """Keep an unwritten batch for the next flush, within ``KEEP_MAX``."""
        batch.now.clear()  # "now" values are stale by then
        with self.lock:
            newer, self.batch = self.batch, Batch()
            if batch.size() > KEEP_MAX:
                self.dropped += batch.size()
                batch = Batch()
            if batch.size() + newer.size() > KEEP_MAX:
                self.dropped += newer.size()
                newer = Batch()
            batch.merge(newer)
            self.kept = batch


def _enabled_now() -> bool:
    value = getattr(settings, "SHOWFLOOR_COUNTING", None)
    if value is None:
        raw = os.environ.get("SHOWFLOOR_COUNTING", "1").strip().lower()
        return raw not in ("0", "false", "no", "off")
    return bool(value)


_counter = Counter()


def get_counter() -> Counter:
    return _counter


def _fresh_counter_after_fork() -> None:
    # A forked child has none of the parent's threads (and maybe a held lock).
    global _counter
    _counter = Counter()


os.register_at_fork(after_in_child=_fresh_counter_after_fork)


# --- The API apps call -------------------------------------------------------


def add(
    show_id: int,
    metric: str,
    n: int = 1,
    *,
    products: Mapping[int, int] | None = None,
    at: float | None = None,
) -> None:
    """Count ``n`` of ``metric`` for the show in the current minute, and for
    each product in ``products`` its own value (``{product_id: n}``)."""
    counter = _counter
    if counter.enabled:
        counter.add(show_id, metric, n, products, at)


def unique(
    show_id: int,
    metric: str,
    who: str,
    *,
    whole_show: bool = True,
    at: float | None = None,
) -> None:
    """Count ``who`` once per minute and (``whole_show``) once for the show.
    ``who`` is hashed here (``visitor_key``); only the hash leaves the call."""
    counter = _counter
    if counter.enabled:
        counter.unique(show_id, metric, visitor_key(show_id, who), whole_show, at)


def unique_key(
    show_id: int,
    metric: str,
    key: str,
    *,
    whole_show: bool = True,
    at: float | None = None,
) -> None:
    """``unique`` for a key already made by ``visitor_key`` (a socket keeps
    its own, so its minute-by-minute presence is not hashed again)."""
    counter = _counter
    if counter.enabled:
        counter.unique(show_id, metric, key, whole_show, at)


def peak(show_id: int, metric: str, n: int, *, at: float | None = None) -> None:
    """Keep the largest ``n`` per minute and for the show, and ``n`` as the
    show's value "now" (gone ``NOW_SECONDS`` after nobody reports it)."""
    counter = _counter
    if counter.enabled:
        counter.peak(show_id, metric, n, at)


def flush() -> int:
    """Flush this process's counts now (tests; the end of a process)."""
    return _counter.flush()


def enabled() -> bool:
    return _counter.enabled


# --- The stores ----------------------------------------------------------------


class Store(Protocol):
    def apply(self, batch: Batch) -> None: ...
    def totals(self, show_id: int) -> dict[str, int]:
        """The show's sums and maxima (``max.<metric>``), uniques
        (``u.<metric>``) counted, and values now (``now.<metric>``)."""

    def minute(self, show_id: int, minute: int) -> dict[str, int]:
        """One minute's sums, maxima and uniques (as in ``totals``)."""

    def minutes(self, show_id: int, first: int, last: int) -> dict[int, dict[str, int]]:
        """The sums and maxima of each minute from ``first`` to ``last`` that
        has any (no uniques: a chart's series)."""

    def dirty(self, limit: int) -> list[tuple[int, int]]:
        """(show, minute) pairs written since they were last claimed."""

    def claim(self, show_id: int, minute: int) -> None: ...
    def unclaim(self, show_id: int, minute: int) -> None: ...


def _key(show_id: int, *parts: object) -> str:
    return rclient.key("count", show_id, *parts)


class RedisStore:
    """Counts shared by every process through Redis."""

    def __init__(self) -> None:
        self.client = rclient.sync_client()
        self._max = self.client.register_script(MAX_SCRIPT)

    def dirty_key(self) -> str:
        return rclient.key("count", "dirty")

    def apply(self, batch: Batch) -> None:
        pipe = self.client.pipeline(transaction=False)
        touched: set[str] = set()
        dirty: set[str] = set()
        for (show, minute, metric), n in batch.sums.items():
            mkey, tkey = _key(show, "m", minute), _key(show, "t")
            pipe.hincrby(mkey, metric, n)
            pipe.hincrby(tkey, metric, n)
            touched.update((mkey, tkey))
            dirty.add(f"{show}:{minute}")
        for (show, minute, metric), n in batch.peaks.items():
            mkey, tkey = _key(show, "m", minute), _key(show, "t")
            self._max(keys=[mkey, tkey], args=[f"max.{metric}", n], client=pipe)
            touched.update((mkey, tkey))
            dirty.add(f"{show}:{minute}")
        for (show, when, metric), keys in batch.uniques.items():
            if when is None:
                hll, marker = _key(show, "u", metric), _key(show, "t")
            else:
                hll, marker = _key(show, "u", metric, when), _key(show, "m", when)
                dirty.add(f"{show}:{when}")
            pipe.pfadd(hll, *keys)
            # The hash names the HyperLogLogs it has (a rollup counts them).
            pipe.hsetnx(marker, f"u.{metric}", 0)
            touched.update((hll, marker))
        for (show, metric), n in batch.now.items():
            nkey = _key(show, "now")
            pipe.hset(nkey, metric, n)
            pipe.expire(nkey, NOW_SECONDS)
        for name in touched:
            pipe.expire(name, KEEP_SECONDS)
        if dirty:
            pipe.sadd(self.dirty_key(), *dirty)
            pipe.expire(self.dirty_key(), KEEP_SECONDS)
        pipe.execute()

    def _read(self, hash_key: str, show_id: int, when: int | None) -> dict[str, int]:
        raw = self.client.hgetall(hash_key)
        found: dict[str, int] = {}
        names = []
        for name, value in raw.items():
            text = name.decode()
            if text.startswith("u."):
                names.append(text[2:])
            else:
                found[text] = int(value)
        if names:
            pipe = self.client.pipeline(transaction=False)
            for metric in names:
                hll = (
                    _key(show_id, "u", metric)
                    if when is None
                    else _key(show_id, "u", metric, when)
                )
                pipe.pfcount(hll)
            for metric, count in zip(names, pipe.execute(), strict=True):
                found[f"u.{metric}"] = int(count)
        return found

    def totals(self, show_id: int) -> dict[str, int]:
        found = self._read(_key(show_id, "t"), show_id, None)
        for name, value in self.client.hgetall(_key(show_id, "now")).items():
            found[f"now.{name.decode()}"] = int(value)
        return found

    def minute(self, show_id: int, minute: int) -> dict[str, int]:
        return self._read(_key(show_id, "m", minute), show_id, minute)

    def minutes(self, show_id: int, first: int, last: int) -> dict[int, dict[str, int]]:
        pipe = self.client.pipeline(transaction=False)
        wanted = range(first, last + 1)
        for minute in wanted:
            pipe.hgetall(_key(show_id, "m", minute))
        return {
            minute: {
                name.decode(): int(value)
                for name, value in raw.items()
                if not name.startswith(b"u.")
            }
            for minute, raw in zip(wanted, pipe.execute(), strict=True)
            if raw
        }

    def dirty(self, limit: int) -> list[tuple[int, int]]:
        pairs = []
        for member in list(self.client.smembers(self.dirty_key()))[:limit]:
            show, _sep, minute = member.decode().partition(":")
            pairs.append((int(show), int(minute)))
        return pairs

    def claim(self, show_id: int, minute: int) -> None:
        self.client.srem(self.dirty_key(), f"{show_id}:{minute}")

    def unclaim(self, show_id: int, minute: int) -> None:
        self.client.sadd(self.dirty_key(), f"{show_id}:{minute}")


class MemoryStore:
    """The same counts in this process (the embedded demo, without Redis)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hashes: dict[tuple[int, int | None], dict[str, int]] = {}
        self.hlls: dict[tuple[int, int | None, str], set[str]] = {}
        self.now: dict[int, dict[str, tuple[int, float]]] = {}
        self.touched: dict[tuple[int, int | None], float] = {}
        self.dirty_set: set[tuple[int, int]] = set()

    def apply(self, batch: Batch) -> None:
        moment = time.monotonic()
        with self.lock:
            for (show, minute, metric), n in batch.sums.items():
                for where in ((show, minute), (show, None)):
                    values = self.hashes.setdefault(where, {})
                    values[metric] = values.get(metric, 0) + n
                    self.touched[where] = moment
                self.dirty_set.add((show, minute))
            for (show, minute, metric), n in batch.peaks.items():
                for where in ((show, minute), (show, None)):
                    values = self.hashes.setdefault(where, {})
                    name = f"max.{metric}"
                    values[name] = max(values.get(name, n), n)
                    self.touched[where] = moment
                self.dirty_set.add((show, minute))
            for (show, when, metric), keys in batch.uniques.items():
                self.hlls.setdefault((show, when, metric), set()).update(keys)
                self.hashes.setdefault((show, when), {}).setdefault(f"u.{metric}", 0)
                self.touched[(show, when)] = moment
                if when is not None:
                    self.dirty_set.add((show, when))
            for (show, metric), n in batch.now.items():
                self.now.setdefault(show, {})[metric] = (n, moment)
            self._expire(moment)

    def _expire(self, moment: float) -> None:
        for where, last in list(self.touched.items()):
            if moment - last > KEEP_SECONDS:
                del self.touched[where]
                self.hashes.pop(where, None)
                for hll in [k for k in self.hlls if k[:2] == where]:
                    del self.hlls[hll]

    def _read(self, show_id: int, when: int | None) -> dict[str, int]:
        found = dict(self.hashes.get((show_id, when), {}))
        for name in [n for n in found if n.startswith("u.")]:
            found[name] = len(self.hlls.get((show_id, when, name[2:]), ()))
        return found

    def totals(self, show_id: int) -> dict[str, int]:
        moment = time.monotonic()
        with self.lock:
            found = self._read(show_id, None)
            for metric, (n, at) in self.now.get(show_id, {}).items():
                if moment - at <= NOW_SECONDS:
                    found[f"now.{metric}"] = n
        return found

    def minute(self, show_id: int, minute: int) -> dict[str, int]:
        with self.lock:
            return self._read(show_id, minute)

    def minutes(self, show_id: int, first: int, last: int) -> dict[int, dict[str, int]]:
        with self.lock:
            return {
                minute: {k: v for k, v in values.items() if not k.startswith("u.")}
                for (show, minute), values in self.hashes.items()
                if show == show_id and minute is not None and first <= minute <= last
            }

    def dirty(self, limit: int) -> list[tuple[int, int]]:
        with self.lock:
            return list(self.dirty_set)[:limit]

    def claim(self, show_id: int, minute: int) -> None:
        with self.lock:
            self.dirty_set.discard((show_id, minute))

    def unclaim(self, show_id: int, minute: int) -> None:
        with self.lock:
            self.dirty_set.add((show_id, minute))


_memory_store = MemoryStore()
_redis_stores: dict[str, RedisStore] = {}
_stores_lock = threading.Lock()


def get_store() -> Store:
    """The store for the current settings (read at call time)."""
    target = rclient.url()
    if not target:
        return _memory_store
    with _stores_lock:
        store = _redis_stores.get(target)
        if store is None:
            store = _redis_stores[target] = RedisStore()
        return store


def memory_store() -> MemoryStore:
    return _memory_store


# --- Reading ---------------------------------------------------------------------


def totals(show_id: int) -> dict[str, int]:
    """The show's counts so far (see ``Store.totals``). Raises one of
    ``realtime.redis.ERRORS`` when Redis does not answer."""
    return get_store().totals(show_id)


def minute_counts(show_id: int, minute: int) -> dict[str, int]:
    """One minute's counts (see ``Store.minute``)."""
    return get_store().minute(show_id, minute)


def minute_series(show_id: int, first: int, last: int) -> dict[int, dict[str, int]]:
    """The sums and maxima of the minutes from ``first`` to ``last`` that have
    any (see ``Store.minutes``)."""
    return get_store().minutes(show_id, first, last)


# --- The rollup into PostgreSQL ------------------------------------------------


def rollup(*, now: float | None = None, limit: int = ROLLUP_BATCH) -> int:
    """Write the closed minutes counted since the last rollup into PostgreSQL
    as absolute values (an upsert per show, minute and metric), and the shows'
    uniques so far; the number of minutes written. Idempotent: a second run
    writes the same values again (or nothing). A minute that gets late counts
    (a process flushing after a Redis outage) is written again, whole."""
    from realtime.models import ShowMinuteCount, ShowTotalCount

    moment = time.time() if now is None else now
    open_from = minute_of(moment - CLOSE_GRACE_SECONDS)
    store = get_store()
    written = 0
    shows: set[int] = set()
    for show_id, minute in store.dirty(limit):
        if minute >= open_from:
            continue
        store.claim(show_id, minute)
        try:
            values = store.minute(show_id, minute)
            at = datetime.fromtimestamp(minute * 60, tz=UTC)
            ShowMinuteCount.objects.bulk_create(
                [
                    ShowMinuteCount(
                        show_id=show_id, minute=at, metric=metric, value=value
                    )
                    for metric, value in values.items()
                ],
                update_conflicts=True,
                unique_fields=["show_id", "minute", "metric"],
                update_fields=["value"],
            )
        except Exception:
            store.unclaim(show_id, minute)
            raise
        written += 1
        shows.add(show_id)
    for show_id in shows:
        values = store.totals(show_id)
        ShowTotalCount.objects.bulk_create(
            [
                ShowTotalCount(show_id=show_id, metric=metric, value=value)
                for metric, value in values.items()
                if metric.startswith(("u.", "max."))
            ],
            update_conflicts=True,
            unique_fields=["show_id", "metric"],
            update_fields=["value"],
        )
    return written


_last_rollup = 0.0


def rollup_due(*, interval: float = ROLLUP_SECONDS) -> int:
    """``rollup()`` at most every ``interval`` seconds (the sweeper calls this
    on every pass). Never raises: a store or database outage is logged and
    the next pass tries again."""
    global _last_rollup
    if time.monotonic() - _last_rollup < interval:
        return 0
    _last_rollup = time.monotonic()
    try:
        return rollup()
    except rclient.ERRORS as exc:
        rclient.mark_down()
        logger.warning("counting rollup: Redis unavailable (%s)", exc)
    except Exception:
        logger.exception("counting rollup failed")
        with contextlib.suppress(Exception):
            close_old_connections()
    return 0
