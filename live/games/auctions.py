"""The auctions game's socket interface (docs/auctions.md): parse, authorize,
call one service; and the timely close.

The close does not wait for the sweeper: every process that sees an auction
(it started it, took a bid on it, or a viewer's clock ping arrived while its
snapshot showed it running) keeps one asyncio timer for it that wakes at its
end, re-reads the end (bids in the last seconds move it) and closes it. Every
process may try at once: the close takes the auction's row lock and only the
first finds it running. After a sale the same timer waits for the buyer's
``pay_by`` and moves the sale on (``auction_settle``). The sweeper calls
``checkout.services.auction_close_due`` as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError, close_old_connections
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from checkout import auction_cards, services
from checkout.exceptions import BidTooLow
from checkout.models import Auction
from live.hub import core as hub_core
from live.protocol import Refusal
from live.protocol import id_field as _id
from live.protocol import int_field as _int
from realtime.limiter import Bucket
from shows.exceptions import ShowfloorError
from shows.models import Show, User

logger = logging.getLogger(__name__)

MAX_MINOR = 10**12
MAX_INCREMENT_ROWS = 20
# clock.ping: a burst of 5, then 2 a second; pings past it are dropped.
PING_BURST, PING_RATE = 5, 2.0
# Bids, buy-now: per socket, a burst of 6, then 3 a second.
BID_BURST, BID_RATE = 6, 3.0
# A timer that cannot reach the database tries again after this long.
RETRY_SECONDS = 1.0
WAKE_SLACK_SECONDS = 0.005

# auction id → this process's timer for it.
_timers: dict[int, asyncio.Task[None]] = {}
# show id → the running auction the last snapshot built here showed (written
# from the snapshot's worker thread; read on the event loop).
_running: dict[int, int] = {}
# auction id → (the next amount as this process last heard it from the room's
# events, that amount written out per language). It only grows while the
# auction runs, so a bid below it would be refused under the lock too: it is
# refused here, without a thread hop, a query or an audit row (in a storm
# almost every bid is one of these).
_floors: dict[int, tuple[int, dict[str, str]]] = {}
# (show id, auction id) → this process's line of bids on it (``_Line``); by
# show too, since a batch is decided as one show's (``auction_bids``).
_lines: dict[tuple[int, int], _Line] = {}


@dataclass
class _Waiting:
    """A bid in a line: whom to answer, and the request for the service."""

    consumer: Any
    ref: Any
    offered: int
    request: services.BidRequest
    answered: asyncio.Future[bool]


class _Line:
    """This process's bids on one auction, decided in the order they arrived.
    While one batch is at the database, the bids that arrive wait; then all
    of them go in one transaction (``services.auction_bids``): one wait for
    the auction's row lock and one commit however many came at once, and a
    bid the batch before it passed is refused here without a query. A crowd
    tapping the same amount thus costs one database trip, not one each."""

    def __init__(self, auction_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.auction_id = auction_id
        self.loop = loop
        self.waiting: list[_Waiting] = []
        self.task: asyncio.Task[None] | None = None

    def join(self, waiting: _Waiting) -> None:
        self.waiting.append(waiting)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            going = []
            for waiting in batch:
                below = _below_floor(self.auction_id, waiting.offered)
                if below is None:
                    going.append(waiting)
                    continue
                waiting.consumer._error(waiting.ref, "bid_too_low", below)
                _answered(waiting, False)
            if going:
                await self._decide(going)

    async def _decide(self, batch: list[_Waiting]) -> None:
        from live import consumers  # the consumer imports the games

        show = batch[0].consumer.show
        try:
            results = await consumers.in_room_database(
                _bids_and_audit,
                show,
                self.auction_id,
                [waiting.request for waiting in batch],
            )
        except DatabaseError:
            for waiting in batch:
                waiting.consumer._unavailable(waiting.ref)
                _answered(waiting, False)
            return
        except Exception as exc:
            for waiting in batch:
                if not waiting.answered.done():
                    waiting.answered.set_exception(exc)
            return
        for waiting, result in zip(batch, results, strict=True):
            placed = isinstance(result, services.BidPlaced)
            waiting.consumer._answer(waiting.ref, None if placed else result)
            _answered(waiting, placed)


def _answered(waiting: _Waiting, placed: bool) -> None:
    if not waiting.answered.done():
        waiting.answered.set_result(placed)


def _bids_and_audit(
    show: Show, auction_id: int, requests: list[services.BidRequest]
) -> list[services.BidPlaced | ShowfloorError]:
    """In a worker thread: the batch, what it taught this process of the next
    amount, and the audit of its refusals (after the commit)."""
    from live import consumers

    results = services.auction_bids(show=show, auction_id=auction_id, requests=requests)
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, services.BidPlaced):
            _learn(auction_id, result.next_minor, result.currency)
        elif isinstance(result, BidTooLow):
            _learn(auction_id, result.floor, result.currency)
        if isinstance(result, ShowfloorError):
            consumers.audit_refusal(result, "auction.bid", request.user, show)
    return results


# --- The next amount, from the room's events ------------------------------------


def _heard(show_id: int, payload: str) -> None:
    """Every ``auction.*`` event reaching this process's rooms (the hub)."""
    try:
        event = json.loads(payload)
        kind = event["type"]
        if kind == "auction.closed":
            _floors.pop(int(event["auction_id"]), None)
            closed = int(event["auction_id"])
            for key, line in list(_lines.items()):
                if key[1] == closed and not line.waiting:
                    del _lines[key]
            return
        source = event["auction"] if kind == "auction.started" else event
        if kind not in ("auction.started", "auction.bid"):
            return
        auction_id = int(
            source["id"] if kind == "auction.started" else source["auction_id"]
        )
        floor, written = source.get("next_minor"), source.get("next")
    except (ValueError, KeyError, TypeError):
        return
    if not isinstance(floor, int) or not isinstance(written, dict):
        return
    known = _floors.get(auction_id)
    if known is None or floor > known[0]:
        if len(_floors) > 1000:
            _floors.clear()
        _floors[auction_id] = (floor, written)


hub_core.WATCHERS.append(('"type":"auction.', _heard))


def _learn(auction_id: int, floor: int | None, currency: str) -> None:
    """This process's own bid (or its refusal) told it the next amount: at
    least as new as any event, and known before the event comes back."""
    if floor is None or not currency:
        return
    known = _floors.get(auction_id)
    if known is None or floor > known[0]:
        written = auction_cards.written(floor, currency) or {}
        if len(_floors) > 1000:
            _floors.clear()
        _floors[auction_id] = (floor, written)


def _line(show_id: int, auction_id: int) -> _Line:
    loop = asyncio.get_running_loop()
    line = _lines.get((show_id, auction_id))
    if line is None or line.loop is not loop:
        if len(_lines) > 1000:
            for key, old in list(_lines.items()):
                if not old.waiting and (old.task is None or old.task.done()):
                    del _lines[key]
        line = _lines[show_id, auction_id] = _Line(auction_id, loop)
    return line


def _below_floor(auction_id: int, offered: int) -> str | None:
    """The refusal's message when ``offered`` is below the next amount this
    process knows of, else None."""
    known = _floors.get(auction_id)
    if known is None or offered >= known[0]:
        return None
    _floor, written = known
    amount = written.get(translation.get_language() or "en") or written.get("en", "")
    return _("The next bid is at least %(next)s.") % {"next": amount}


# --- The timer ----------------------------------------------------------------


def _db(func: Any) -> Any:
    return database_sync_to_async(func, thread_sensitive=False)


def _unsettled_pay_by(auction_id: int) -> datetime | None:
    """The sale's ``pay_by`` while it waits for a payment, else None."""
    close_old_connections()
    row = (
        Auction.objects.filter(
            pk=auction_id,
            status=Auction.Status.CLOSED,
            outcome=Auction.Outcome.SOLD,
            settlement="",
        )
        .values_list("pay_by", flat=True)
        .first()
    )
    return row


def _close(auction_id: int) -> datetime | None:
    close_old_connections()
    return services.auction_close(auction_id=auction_id)


def _settle(auction_id: int) -> int:
    close_old_connections()
    return services.auction_settle(auction_id=auction_id)


async def _sleep_until(moment: datetime) -> None:
    # A hair past the moment: a timer that wakes early re-reads it for nothing.
    delay = (moment - timezone.now()).total_seconds() + WAKE_SLACK_SECONDS
    await asyncio.sleep(max(0.0, delay))


async def _watch(auction_id: int) -> None:
    """Close the auction at its end (re-read after every wake: anti-sniping
    moves it), then follow its sale's payment deadlines until it settles."""
    while True:
        try:
            ends_at = await _db(_close)(auction_id)
            if ends_at is None:
                break
            await _sleep_until(ends_at)
        except DatabaseError:
            logger.warning("auction %s: close failed, trying again", auction_id)
            await asyncio.sleep(RETRY_SECONDS)
    while True:
        try:
            pay_by = await _db(_unsettled_pay_by)(auction_id)
            if pay_by is None:
                return
            await _sleep_until(pay_by)
            await _db(_settle)(auction_id)
        except DatabaseError:
            await asyncio.sleep(RETRY_SECONDS)


def arm(auction_id: int) -> None:
    """Make sure this process has a timer for the auction (on the running
    event loop)."""
    loop = asyncio.get_running_loop()
    task = _timers.get(auction_id)
    if task is not None and not task.done() and task.get_loop() is loop:
        return
    task = loop.create_task(_watch(auction_id))
    _timers[auction_id] = task
    task.add_done_callback(lambda done: _forget(auction_id, done))


def _forget(auction_id: int, task: asyncio.Task[None]) -> None:
    if _timers.get(auction_id) is task:
        del _timers[auction_id]
    if not task.cancelled() and task.exception() is not None:
        logger.error("auction %s timer failed", auction_id, exc_info=task.exception())


def _arm_for_show(show_id: int) -> None:
    auction_id = _running.get(show_id)
    if auction_id is not None:
        arm(auction_id)


# --- Snapshot -----------------------------------------------------------------


def room_auction(*, show: Show, user: User | None = None) -> dict[str, Any]:
    """The snapshot's ``auction`` (``checkout.auction_cards.room_auction``);
    remembers a running one, so this process keeps its timer once a viewer
    of it is here."""
    part = auction_cards.room_auction(show=show, user=user)
    card = part["auction"]
    if card is not None and card["status"] == Auction.Status.RUNNING:
        _running[show.pk] = int(card["id"])
    else:
        _running.pop(show.pk, None)
    return part


# --- Handlers -----------------------------------------------------------------


def _limited(consumer: Any, name: str, burst: int, rate: float) -> float:
    bucket = consumer.__dict__.get(name)
    if bucket is None:
        bucket = Bucket(burst)
        setattr(consumer, name, bucket)
    return float(bucket.take(capacity=burst, rate=rate))


async def clock_ping(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    """``{t}`` → a private ``clock.pong`` with the same ``t`` and the server's
    epoch ms, for the page to measure its clock offset; past the limit the
    ping is dropped (the page keeps its last measure)."""
    t = msg.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise Refusal("invalid", _("“t” must be a number."))
    if _limited(consumer, "clock_pings", PING_BURST, PING_RATE):
        return
    frame: dict[str, Any] = {
        "type": "clock.pong",
        "t": t,
        "server_now": int(time.time() * 1000),
    }
    if ref is not None:
        frame["ref"] = ref
    consumer._frame(frame)
    _arm_for_show(consumer.show.pk)


def _increments(msg: dict[str, Any]) -> list[list[int]] | None:
    rows = msg.get("increments")
    if rows is None:
        return None
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_INCREMENT_ROWS:
        raise Refusal(
            "invalid", _("“increments” is a list of [from_minor, step_minor] pairs.")
        )
    table = []
    for row in rows:
        if (
            not isinstance(row, list)
            or len(row) != 2
            or any(
                isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < MAX_MINOR
                for v in row
            )
        ):
            raise Refusal(
                "invalid",
                _("“increments” is a list of [from_minor, step_minor] pairs."),
            )
        table.append([int(row[0]), int(row[1])])
    return table


async def auction_start(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    consumer._require_login()
    close = msg.get("close", Auction.Close.EXTEND)
    if close not in Auction.Close.values:
        raise Refusal("invalid", _("“close” is “extend” or “sudden_death”."))
    fields = {
        "product_id": _id(msg, "product_id"),
        "variant_id": _id(msg, "variant_id", required=False),
        "start_minor": _int(msg, "start_minor", low=1, high=MAX_MINOR),
        "duration_seconds": _int(msg, "duration_seconds", low=10, high=900),
        "increments": _increments(msg),
        "reserve_minor": _int(
            msg, "reserve_minor", low=1, high=MAX_MINOR, required=False
        ),
        "buy_now_minor": _int(
            msg, "buy_now_minor", low=1, high=MAX_MINOR, required=False
        ),
        "close": close,
        "extend_within_seconds": _int(
            msg, "extend_within_seconds", low=0, high=60, required=False, default=10
        ),
        "extend_by_seconds": _int(
            msg, "extend_by_seconds", low=1, high=60, required=False, default=10
        ),
    }
    started: list[Auction] = []

    def start(**kwargs: Any) -> None:
        started.append(services.auction_start(**kwargs))

    if await consumer._service(
        "auction.start", ref, start, user=consumer.user, **fields
    ):
        _running[consumer.show.pk] = started[0].pk
        arm(started[0].pk)


def _bid_limited(consumer: Any, ref: Any) -> bool:
    wait = _limited(consumer, "auction_bids", BID_BURST, BID_RATE)
    if wait:
        consumer._error(
            ref,
            "rate_limited",
            _("You are bidding too fast. Please wait a moment."),
            max(1, round(wait)),
        )
    return bool(wait)


async def auction_bid(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    """``{auction_id, amount_minor}`` (one tap) or ``{auction_id,
    max_minor}`` (a proxy maximum); answered ``ack`` once the bid (and its
    events) committed."""
    consumer._require_login()
    auction_id = _id(msg, "auction_id")
    amount = _int(msg, "amount_minor", low=1, high=MAX_MINOR, required=False)
    maximum = _int(msg, "max_minor", low=1, high=MAX_MINOR, required=False)
    if (amount is None) == (maximum is None):
        raise Refusal("invalid", _("Send “amount_minor” or “max_minor”."))
    if _bid_limited(consumer, ref):
        return
    key, offered = int(auction_id or 0), int(amount or maximum or 0)
    below = _below_floor(key, offered)
    if below is not None:
        consumer._error(ref, "bid_too_low", below)
        return
    answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    request = services.BidRequest(
        user=consumer.user,
        amount_minor=amount,
        max_minor=maximum,
        language=translation.get_language() or "",
    )
    waiting = _Waiting(consumer, ref, offered, request, answered)
    _line(consumer.show.pk, key).join(waiting)
    if await answered:
        arm(key)
    else:
        _arm_for_show(consumer.show.pk)


async def auction_buy_now(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    consumer._require_login()
    auction_id = _id(msg, "auction_id")
    if _bid_limited(consumer, ref):
        return
    if await consumer._service(
        "auction.buy_now",
        ref,
        services.auction_buy_now,
        user=consumer.user,
        auction_id=auction_id,
    ):
        arm(int(auction_id or 0))


async def auction_cancel(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    consumer._require_login()
    await consumer._service(
        "auction.cancel",
        ref,
        services.auction_cancel,
        user=consumer.user,
        auction_id=_id(msg, "auction_id"),
    )


async def shutdown() -> None:
    """Stop this process's timers (tests, a server stopping)."""
    for task in list(_timers.values()):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    _timers.clear()


# type → (hosts and moderators only, async handler(consumer, msg, ref))
HANDLERS: dict[str, tuple[bool, Any]] = {
    "clock.ping": (False, clock_ping),
    "auction.start": (True, auction_start),
    "auction.bid": (False, auction_bid),
    "auction.buy_now": (False, auction_buy_now),
    "auction.cancel": (True, auction_cancel),
}
# Called with show= and user=; each returns keys for the room snapshot.
SNAPSHOT_PARTS: tuple[Any, ...] = (room_auction,)
