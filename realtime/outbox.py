"""The outbox: an event is written in the transaction of the change it
announces, and published after commit, retried until the bus takes it.

Why: publishing after commit straight to Redis lost every event whose commit
met a Redis outage (the sender had its ack; nobody ever saw the message), and
the per-show seq lived in Redis, so a Redis restart started it again at 1.

- ``append(show_id, data)`` (inside the caller's transaction): a persisted room
  event takes the show's next ``seq`` from ``RoomSequence`` (one upsert, which
  locks the show's counter row until commit, so seqs are gapless and in commit
  order per show) and is stored with it; private events and control commands
  are stored without a seq.
- ``batched()`` (inside a transaction): the events appended in the block are
  stored when it ends, with one seq reservation per show (``seq + n``) and
  one INSERT, and published after commit in the order they were appended. A
  batch of bids decided together thus costs two statements for its events,
  not two per event.
- After commit the committing thread publishes the event at once (the fast
  path: no added latency). The bus skips a seq it already published, and
  refuses one whose predecessor is not out yet (another thread's commit is
  still on its way); then, or when Redis is down, the event waits for the
  relay.
- The relay, one thread per process that serves sockets, publishes whatever is
  pending, oldest first, every ``SWEEP_SECONDS`` or at once when woken, and
  records what went out. Several processes may sweep the same event: the bus's
  last-seq check makes that a no-op.
- Published room events stay ``KEEP_HOURS``: a client that resumes after its
  events left Redis (a restart, the capped log) gets them from here.

Events are published at least once to the bus and exactly once into a show's
sequence; the hub drops a seq it already delivered and fetches a skipped one
from here (``events_between``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from realtime import bus as busmod
from realtime import redis as rclient
from realtime.models import OutboxEvent, RoomSequence

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
# Private events and commands have no seq to make a second publish a no-op, so
# the sweep leaves them to the committing thread for this long.
UNSEQUENCED_GRACE_SECONDS = 2.0
# A room event the bus keeps refusing as early (its predecessor was recorded
# as published but is not in this Redis lifetime) goes out anyway after this.
FORCE_AFTER_SECONDS = 5.0
KEEP_HOURS = 72
UNSEQUENCED_KEEP_HOURS = 1
CLEANUP_SECONDS = 3600
SWEEP_BATCH = 500
EARLY_RETRY_PAUSES = (0.001, 0.002, 0.004)


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    show_id: int
    seq: int | None
    data: str


@dataclass
class Batch:
    """The events appended inside ``batched()``, not stored yet: (show id,
    a persisted event's JSON body (``event_body``) or "", ready data)."""

    items: list[tuple[int, str, str]] = field(default_factory=list)


_local = threading.local()


def _next_seq(show_id: int, count: int = 1) -> int:
    """Take the show's next ``count`` seqs; returns the last of them."""
    table = RoomSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (show_id, seq) VALUES (%s, %s)"  # noqa: S608  # nosec B608 - the model's table
            f" ON CONFLICT (show_id) DO UPDATE SET seq = {table}.seq + %s"
            " RETURNING seq",
            [show_id, count, count],
        )
        (seq,) = cursor.fetchone() or (0,)
    return int(seq)


def append(show_id: int, event: busmod.Event | None = None, *, data: str = "") -> int:
    """Store ``event`` (a persisted room event) or ``data`` (a ready bus
    message without seq) in the current transaction and publish it after
    commit. Returns the event's seq (0 for ``data``, and inside ``batched()``,
    where the seq is taken when the block ends)."""
    batch: Batch | None = getattr(_local, "batch", None)
    if batch is not None:
        body = busmod.event_body(event) if event is not None else ""
        batch.items.append((show_id, body, data))
        return 0
    seq = 0
    if event is not None:
        if not connection.in_atomic_block:
            with transaction.atomic():
                return append(show_id, event)
        seq = _next_seq(show_id)
        data = "E" + busmod.with_seq(seq, event)
    row = OutboxEvent.objects.create(show_id=show_id, seq=seq or None, data=data)
    pending = Pending(row.id, show_id, seq or None, data)
    transaction.on_commit(lambda: publish_now(pending))
    return seq


@contextlib.contextmanager
def batched() -> Iterator[Batch]:
    """Inside a transaction: keep what ``append`` is given until the block
    ends, then store it all at once (``_store``). An exception out of the
    block drops the batch with the transaction. A nested ``batched()`` joins
    the batch already open."""
    if getattr(_local, "batch", None) is not None:
        yield _local.batch
        return
    if not connection.in_atomic_block:
        raise RuntimeError("outbox.batched() needs a transaction")
    batch = _local.batch = Batch()
    try:
        yield batch
    finally:
        _local.batch = None
    _store(batch.items)


def _store(items: list[tuple[int, str, str]]) -> None:
    """Store a batch's events: each show's seqs taken at once (in show order,
    so two batches never wait on each other's counters crosswise), one
    INSERT, one after-commit publish of them all in order."""
    if not items:
        return
    counts = Counter(show_id for show_id, body, _data in items if body)
    next_seqs = {}
    for show_id in sorted(counts):
        last = _next_seq(show_id, counts[show_id])
        next_seqs[show_id] = iter(range(last - counts[show_id] + 1, last + 1))
    rows = []
    for show_id, body, data in items:
        seq = next(next_seqs[show_id]) if body else None
        if seq is not None:
            data = "E" + busmod.body_with_seq(seq, body)
        rows.append(OutboxEvent(show_id=show_id, seq=seq, data=data))
    if connection.features.can_return_rows_from_bulk_insert:
        OutboxEvent.objects.bulk_create(rows)
    else:
        for row in rows:
            row.save(force_insert=True)
    pending = [Pending(row.id, row.show_id, row.seq, row.data) for row in rows]

    def publish() -> None:
        for item in pending:
            publish_now(item)

    transaction.on_commit(publish)


def _publish(bus: busmod.Bus, item: Pending, *, mode: str) -> int:
    """Hand one event to the bus. ``mode``: "strict" right after commit,
    "sweep" from the relay, "force" past a predecessor that is not coming."""
    if item.seq is not None:
        if mode == "force":
            bus.forget_published(item.show_id)
        return bus.publish_event(
            item.show_id, item.seq, item.data[1:], strict=mode == "strict"
        )
    if item.data.startswith("C"):
        bus.control(item.data[1:])
    else:
        bus.publish(item.show_id, item.data)
    return busmod.PUBLISHED


def publish_now(item: Pending) -> None:
    """After commit, in the committing thread: publish at once if the bus
    takes it, otherwise leave it to the relay. Never raises: the change is
    committed and the event is safe in the outbox."""
    relay = get_relay()
    if rclient.url() and rclient.is_down():
        relay.wake()
        return
    try:
        bus = busmod.get_bus()
        result = _publish(bus, item, mode="strict")
        for pause in EARLY_RETRY_PAUSES:
            if result != busmod.EARLY:
                break
            # Most often the predecessor is another thread's commit of the
            # same show, published a moment later: waiting a few milliseconds
            # here is cheaper than a sweep of the relay.
            time.sleep(pause)
            result = _publish(bus, item, mode="strict")
    except Exception as exc:
        if isinstance(exc, rclient.ERRORS):
            rclient.mark_down()
        else:
            logger.exception("could not publish a room event; the relay retries")
        relay.wake()
        return
    if result == busmod.EARLY:
        relay.wake()
    else:
        relay.published(item.id)


class Relay:
    """The process's relay thread (started on first use)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.event = threading.Event()
        self.done: list[int] = []
        self.thread: threading.Thread | None = None
        self.last_cleanup = 0.0
        self.early_since: dict[int, float] = {}
        self.sweeps = 0
        self.stopping = False

    def start(self) -> None:
        with self.lock:
            if self.stopping:
                return
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="outbox-relay", daemon=True
                )
                self.thread.start()

    def stop(self) -> None:
        """Stop the thread after its current sweep, for good (the end of a
        test session; a process that stops serving)."""
        with self.lock:
            thread, self.thread = self.thread, None
            self.stopping = True
        self.event.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def wake(self) -> None:
        self.start()
        self.event.set()

    def published(self, event_id: int) -> None:
        """Record (soon, in one update with others) that an event went out."""
        with self.lock:
            self.done.append(event_id)
        self.start()

    def _run(self) -> None:
        backoff = 0.0
        while True:
            self.event.wait(timeout=max(SWEEP_SECONDS, backoff))
            self.event.clear()
            if self.stopping:
                return
            try:
                self.run_once()
                backoff = 0.0
            except Exception as exc:
                backoff = min(2.0, max(0.25, backoff * 2))
                if isinstance(exc, DatabaseError):
                    logger.warning("outbox relay: database unavailable (%s)", exc)
                elif isinstance(exc, rclient.ERRORS):
                    rclient.mark_down()
                    logger.warning("outbox relay: Redis unavailable (%s)", exc)
                else:
                    logger.warning("outbox relay failed (%r); retrying", exc)
            finally:
                # Hold no connection between sweeps (a database restart or a
                # test database being dropped finds none of ours).
                with contextlib.suppress(Exception):
                    connection.close()

    def run_once(self) -> int:
        """Record what went out, publish what is pending; the number published."""
        self.sweeps += 1
        self._record()
        sent = self._sweep()
        self._record()
        if time.monotonic() - self.last_cleanup > CLEANUP_SECONDS:
            cleanup()
            self.last_cleanup = time.monotonic()
        return sent

    def _record(self) -> None:
        with self.lock:
            done, self.done = self.done, []
        if not done:
            return
        try:
            OutboxEvent.objects.filter(id__in=done).update(published_at=timezone.now())
        except Exception:
            with self.lock:
                self.done[:0] = done
            raise

    def _sweep(self) -> int:
        grace = timezone.now() - timedelta(seconds=UNSEQUENCED_GRACE_SECONDS)
        rows = [
            Pending(event_id, show_id, seq, data)
            for event_id, show_id, seq, data, created_at in OutboxEvent.objects.filter(
                published_at__isnull=True
            )
            .order_by("id")
            .values_list("id", "show_id", "seq", "data", "created_at")[:SWEEP_BATCH]
            if seq is not None or created_at <= grace
        ]
        if not rows:
            return 0
        bus = busmod.get_bus()
        held: set[int] = set()
        sent: list[int] = []
        for item in rows:
            if item.show_id in held:
                continue
            result = _publish(bus, item, mode="sweep")
            if result == busmod.EARLY:
                first = self.early_since.setdefault(item.id, time.monotonic())
                if time.monotonic() - first < FORCE_AFTER_SECONDS:
                    held.add(item.show_id)
                    continue
                logger.warning(
                    "show %s: seq %s forced out past a missing predecessor",
                    item.show_id,
                    item.seq,
                )
                _publish(bus, item, mode="force")
            self.early_since.pop(item.id, None)
            sent.append(item.id)
        if sent:
            with self.lock:
                self.done.extend(sent)
        return len(sent)


def cleanup() -> None:
    """Forget published events past their keeping time."""
    now = timezone.now()
    OutboxEvent.objects.filter(
        published_at__isnull=False, created_at__lt=now - timedelta(hours=KEEP_HOURS)
    ).delete()
    OutboxEvent.objects.filter(
        published_at__isnull=False,
        seq__isnull=True,
        created_at__lt=now - timedelta(hours=UNSEQUENCED_KEEP_HOURS),
    ).delete()


_relay = Relay()


def get_relay() -> Relay:
    return _relay


def _fresh_relay_after_fork() -> None:
    # A forked child has none of the parent's threads (and maybe a held lock).
    global _relay
    _relay = Relay()


os.register_at_fork(after_in_child=_fresh_relay_after_fork)


# --- Reading the room's history (resume, gaps) ------------------------------


def current_seq(show_id: int) -> int:
    """The show's last committed seq (0 before its first event)."""
    row = RoomSequence.objects.filter(show_id=show_id).values_list("seq", flat=True)
    return int(row.first() or 0)


def events_between(
    show_id: int, after: int, upto: int | None = None, *, limit: int = 1000
) -> list[tuple[int, str]]:
    """The show's room events with ``after < seq <= upto`` in order, as
    ``(seq, event json)``."""
    rows = OutboxEvent.objects.filter(show_id=show_id, seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [
        (int(seq or 0), data[1:])
        for seq, data in rows.order_by("seq").values_list("seq", "data")[:limit]
    ]


def events_since(
    show_id: int, since: int, *, limit: int
) -> tuple[list[tuple[int, str]], int] | None:
    """Everything after ``since`` and the last seq, or None when a resume is
    not possible (``since`` never issued, more than ``limit`` missed, or some
    of it no longer kept)."""
    current = current_seq(show_id)
    if since > current or current - since > limit:
        return None
    items = events_between(show_id, since, current, limit=limit)
    if len(items) != current - since:
        return None
    return items, current
