"""Auctions: every write, decided by the server (docs/auctions.md).

Starting, bidding, buying now, cancelling and closing; what follows a sale
(the order of each round, the charge, the offer to the next bidder) is in
``services.auction_sales``.

Bids are accepted or refused in the order they arrive: each takes the
auction's row lock (``select_for_update``) in a short transaction that reads
and writes that one row (the leader's maximum is kept on it), inserts the
bids and appends the events to the outbox, so an acknowledged bid is
committed with its events. Stripe is never called inside one of these
transactions.

Stock: one unit of the variant leaves stock when the auction starts
(``Auction.unit_held``); at the close it becomes the hold of the winner's
order, and it goes back to stock when nobody buys it. The winner's saved
card is charged off-session once the close committed; when that fails the
order waits for them until ``pay_by``, then the next bidder is offered it at
their highest bid, under the same rules, until someone pays or nobody is
left (``auction.settled``).

Lock order: the auction row, then the order, then stock-hold and variant rows.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from checkout import auction_cards as cards
from checkout.exceptions import (
    AlreadyLeading,
    AuctionClosed,
    AuctionInvalid,
    AuctionNotFound,
    AuctionRunning,
    BidTooLow,
    BuyNowUnavailable,
    CardRequired,
    NotAHost,
    ShowNotLive,
    SoldOut,
    UnknownVariant,
    VariantRequired,
)
from checkout.models import (
    Auction,
    AuctionMax,
    Bid,
    Order,
    SavedCard,
)
from checkout.money import Money
from checkout.services.auction_sales import (
    auction_settle,
    charge_round,
    notify_bidder,
    round_order,
    unit_back,
)
from checkout.services.orders import (
    _broadcast_stock,
    _take_stock,
)
from realtime import events
from shows.exceptions import NotInLineup, ShowfloorError
from shows.models import LineupItem, Show, User, Variant
from shows.selectors import STAFF_ROLES, membership_role

logger = logging.getLogger(__name__)

AUCTION_STARTED = "auction.started"
AUCTION_BID = "auction.bid"
AUCTION_CLOSED = "auction.closed"
AUCTION_OUTBID = "auction.outbid"
AUCTION_MAX = "auction.max"

MIN_SECONDS, MAX_SECONDS = 10, 900
MAX_INCREMENT_ROWS = 20


def _ms(moment: datetime) -> int:
    return cards.epoch_ms(moment)


# --- Starting -----------------------------------------------------------------


def _clean_increments(
    increments: list[list[int]] | None, currency: str
) -> list[list[int]]:
    if increments is None:
        return cards.default_increments(currency)
    rows = [list(row) for row in increments]
    if not 1 <= len(rows) <= MAX_INCREMENT_ROWS or rows[0][0] != 0:
        raise AuctionInvalid(_("The increments start from 0, at most 20 rows."))
    for index, (start, step) in enumerate(rows):
        if step < 1 or (index and start <= rows[index - 1][0]):
            raise AuctionInvalid(
                _(
                    "Each increment row starts higher than the last one and "
                    "steps by 1 or more."
                )
            )
    return [[int(start), int(step)] for start, step in rows]


def _variant_for(*, show: Show, product_id: int, variant_id: int | None) -> Variant:
    if not LineupItem.objects.filter(show=show, product_id=product_id).exists():
        raise NotInLineup()
    variants = list(
        Variant.objects.filter(product_id=product_id)
        .select_related("product")
        .order_by("id")
    )
    if variant_id is None:
        if len(variants) != 1:
            raise VariantRequired()
        return variants[0]
    for variant in variants:
        if variant.pk == variant_id:
            return variant
    raise UnknownVariant()


def _require_staff(*, show: Show, user: User | None) -> None:
    if membership_role(user=user, brand_id=show.brand_id) not in STAFF_ROLES:
        raise NotAHost()


def auction_start(
    *,
    show: Show,
    user: User,
    product_id: int,
    variant_id: int | None = None,
    start_minor: int,
    duration_seconds: int,
    increments: list[list[int]] | None = None,
    reserve_minor: int | None = None,
    buy_now_minor: int | None = None,
    close: str = Auction.Close.EXTEND,
    extend_within_seconds: int = 10,
    extend_by_seconds: int = 10,
) -> Auction:
    """Start an auction of one unit of a line-up variant in a live show, now,
    for ``duration_seconds``. The brand's owners, hosts and moderators may.

    Takes one unit out of stock (a conditional UPDATE). Raises ``NotAHost``,
    ``ShowNotLive``, ``NotInLineup``, ``VariantRequired``, ``UnknownVariant``,
    ``AuctionInvalid``, ``SoldOut`` or ``AuctionRunning``. Broadcasts
    ``stock.changed`` and ``auction.started`` with the CARD."""
    _require_staff(show=show, user=user)
    if show.status != Show.Status.LIVE:
        raise ShowNotLive()
    variant = _variant_for(show=show, product_id=product_id, variant_id=variant_id)
    table = _clean_increments(increments, variant.currency)
    if (
        not MIN_SECONDS <= duration_seconds <= MAX_SECONDS
        or start_minor < 1
        or close not in Auction.Close.values
        or not 0 <= extend_within_seconds <= 60
        or not 1 <= extend_by_seconds <= 60
    ):
        raise AuctionInvalid()
    if reserve_minor is not None and reserve_minor < start_minor:
        raise AuctionInvalid(_("The reserve is at least the starting price."))
    if buy_now_minor is not None and buy_now_minor <= max(
        start_minor, reserve_minor or 0
    ):
        raise AuctionInvalid(_("Buy now is above the starting price and the reserve."))
    auction_close_due(show=show)
    now = timezone.now()
    try:
        with transaction.atomic():
            auction = Auction.objects.create(
                show=show,
                product=variant.product,
                variant=variant,
                currency=variant.currency,
                start_minor=start_minor,
                increments=table,
                reserve_minor=reserve_minor,
                buy_now_minor=buy_now_minor,
                close=close,
                extend_within_seconds=extend_within_seconds,
                extend_by_seconds=extend_by_seconds,
                started_at=now,
                ends_at=now + timedelta(seconds=duration_seconds),
                unit_held=True,
                created_by=user,
            )
            taken = _take_stock(variant.pk, 1)
            if taken is None:
                raise SoldOut()
            _broadcast_stock(show.pk, variant.pk, known=taken)
            events.broadcast(
                show.pk,
                {
                    "type": AUCTION_STARTED,
                    "auction": cards.auction_card(auction, history=[], now=now),
                    "server_now": _ms(now),
                },
            )
    except IntegrityError as exc:
        raise AuctionRunning() from exc
    return auction


# --- Bidding ------------------------------------------------------------------


@dataclass(frozen=True)
class BidPlaced:
    """What a bid did: the auction's end after it, whether the bidder leads,
    and the next amount it left (None once closed), which the caller's
    process may refuse lower bids by at once."""

    auction_id: int
    ends_at: datetime
    leading: bool
    next_minor: int | None = None
    currency: str = ""


@dataclass
class _Placed:
    user_id: int
    name: str
    amount_minor: int
    proxy: bool = False
    buy_now: bool = False


def _require_card(user: User) -> None:
    if not SavedCard.objects.filter(user=user).exclude(payment_method_id="").exists():
        raise CardRequired()


def _locked(show: Show, auction_id: int) -> Auction:
    auction = (
        Auction.objects.select_for_update().filter(pk=auction_id, show=show).first()
    )
    if auction is None:
        raise AuctionNotFound()
    return auction


def _require_open(auction: Auction, now: datetime) -> None:
    if auction.status != Auction.Status.RUNNING or auction.ends_at <= now:
        raise AuctionClosed()


def _name(user: User) -> str:
    return (user.display_name or str(user.pk))[:50]


def _leader_price(auction: Auction, *, cap: int, beaten: int | None, floor: int) -> int:
    """What a proxy maximum ``cap`` pays to lead: one increment above the cap
    it beat (``beaten``), at least ``floor`` (the next amount), at most its
    cap; and up to the reserve when its cap reaches that far."""
    price = (
        floor if beaten is None else beaten + cards.step_at(auction.increments, beaten)
    )
    price = min(cap, max(price, floor))
    if auction.reserve_minor is not None and price < auction.reserve_minor:
        price = max(price, min(cap, auction.reserve_minor))
    return price


def _resolve(
    auction: Auction,
    *,
    user: User,
    amount_minor: int | None,
    max_minor: int | None,
) -> list[_Placed]:
    """The bids one arrival makes, in order, eBay's way: a challenger who
    offers more than the leader's cap leads, one increment above it (after the
    leader's proxy bid its whole cap); otherwise the leader's proxy answers
    one increment above the challenger, up to its cap. Equal caps: the
    earlier one (the leader) wins. Updates ``leader_max_minor``."""
    floor = cards.next_minor(auction)
    me = _name(user)
    if auction.leader_id == user.pk:
        # Raising one's own maximum: no bid, except up to a reserve not met.
        if max_minor is None or auction.current_minor is None:
            raise AlreadyLeading()
        auction.leader_max_minor = max_minor
        if not cards.reserve_met(auction):
            price = _leader_price(
                auction, cap=max_minor, beaten=None, floor=auction.current_minor
            )
            if price > auction.current_minor:
                return [_Placed(user.pk, me, price, proxy=True)]
        return []
    # One of the two is given (the socket refuses a bid with neither).
    cap = amount_minor if amount_minor is not None else int(max_minor or 0)
    if auction.leader_id is None:
        price = (
            amount_minor
            if amount_minor is not None
            else _leader_price(auction, cap=cap, beaten=None, floor=floor)
        )
        auction.leader_max_minor = max_minor
        return [_Placed(user.pk, me, price)]
    current = auction.current_minor or 0
    leader_cap = max(current, auction.leader_max_minor or 0)
    if cap > leader_cap:
        placed = []
        if leader_cap > current:
            placed.append(
                _Placed(auction.leader_id, auction.leader_name, leader_cap, proxy=True)
            )
        price = (
            amount_minor
            if amount_minor is not None
            else _leader_price(
                auction,
                cap=cap,
                beaten=leader_cap,
                floor=max(floor, leader_cap + 1),
            )
        )
        placed.append(_Placed(user.pk, me, price))
        auction.leader_max_minor = max_minor
        return placed
    # The leader's maximum holds: the challenger's bid, then the answer.
    answer = min(leader_cap, cap + cards.step_at(auction.increments, cap))
    if auction.reserve_minor is not None and answer < auction.reserve_minor:
        answer = max(answer, min(leader_cap, auction.reserve_minor))
    return [
        _Placed(user.pk, me, cap),
        _Placed(auction.leader_id, auction.leader_name, answer, proxy=True),
    ]


def _extend(auction: Auction, now: datetime) -> bool:
    """Anti-sniping: a bid within ``extend_within_seconds`` of the end moves
    it to ``extend_by_seconds`` from now (never earlier); sudden death never
    moves."""
    if auction.close != Auction.Close.EXTEND:
        return False
    if (auction.ends_at - now).total_seconds() > auction.extend_within_seconds:
        return False
    moved = now + timedelta(seconds=auction.extend_by_seconds)
    if moved <= auction.ends_at:
        return False
    auction.ends_at = moved
    auction.extensions += 1
    return True


def _apply(
    auction: Auction, placed: list[_Placed], *, now: datetime, extended: bool
) -> None:
    """Insert the bids, update the row and broadcast one ``auction.bid`` per
    bid, in order (all in the caller's locked transaction)."""
    rows = Bid.objects.bulk_create(
        [
            Bid(
                auction=auction,
                bidder_id=one.user_id,
                bidder_name=one.name,
                amount_minor=one.amount_minor,
                proxy=one.proxy,
                buy_now=one.buy_now,
                created_at=now,
            )
            for one in placed
        ]
    )
    for index, (one, row) in enumerate(zip(placed, rows, strict=True)):
        auction.current_minor = one.amount_minor
        auction.leader_id, auction.leader_name = one.user_id, one.name
        auction.bid_count += 1
        events.broadcast(
            auction.show_id,
            {
                "type": AUCTION_BID,
                "auction_id": auction.pk,
                "bid": cards.bid_json(row, auction.currency),
                **cards.price_state(auction),
                "extended": extended and index == 0,
                "server_now": _ms(now),
            },
        )


def _save_progress(auction: Auction) -> None:
    Auction.objects.filter(pk=auction.pk).update(
        current_minor=auction.current_minor,
        leader_id=auction.leader_id,
        leader_name=auction.leader_name,
        leader_max_minor=auction.leader_max_minor,
        bid_count=auction.bid_count,
        arrivals=auction.arrivals,
        ends_at=auction.ends_at,
        extensions=auction.extensions,
    )


def _notify_outbid(auction: Auction, user_id: int) -> None:
    notify_bidder(
        auction,
        user_id,
        {
            "type": AUCTION_OUTBID,
            "auction_id": auction.pk,
            "amount_minor": auction.current_minor,
            "amount": cards.written(auction.current_minor, auction.currency),
        },
    )


def _too_low(floor: int, currency: str) -> BidTooLow:
    return BidTooLow(
        _("The next bid is at least %(next)s.")
        % {"next": Money(floor, currency).format()},
        floor=floor,
        currency=currency,
    )


def _committed_state(
    show: Show, auction_id: int, requests: Sequence[BidRequest]
) -> tuple[dict[str, Any] | None, set[int]]:
    """Before any lock: the auction as last committed (None if it is not
    this show's) and which of the bidders have a saved card. A bid in a
    closed auction or below the next amount as committed would be refused
    under the lock too (neither ever goes back), so a crowd tapping at an
    amount already passed does not queue behind the bids that can still
    win."""
    row = (
        Auction.objects.filter(pk=auction_id, show=show)
        .values("status", "current_minor", "start_minor", "increments", "currency")
        .first()
    )
    with_card = set(
        SavedCard.objects.filter(user_id__in={r.user.pk for r in requests})
        .exclude(payment_method_id="")
        .values_list("user_id", flat=True)
    )
    return (dict(row) if row is not None else None), with_card


def _refused_before_lock(
    request: BidRequest, row: dict[str, Any] | None, with_card: set[int]
) -> ShowfloorError | None:
    if (request.amount_minor is None) == (request.max_minor is None):
        return AuctionInvalid(_("Send either an amount or a maximum."))
    if request.user.pk not in with_card:
        return CardRequired()
    if row is None:
        return AuctionNotFound()
    if row["status"] != Auction.Status.RUNNING:
        return AuctionClosed()
    current = row["current_minor"]
    floor = (
        row["start_minor"]
        if current is None
        else current + cards.step_at(row["increments"], current)
    )
    if _offered(request) < floor:
        return _too_low(floor, row["currency"])
    return None


def _offered(request: BidRequest) -> int:
    return int(
        request.amount_minor
        if request.amount_minor is not None
        else request.max_minor or 0
    )


def _bid_locked(auction: Auction, request: BidRequest, now: datetime) -> BidPlaced:
    """One bid on the row-locked ``auction`` (``auction_bid``'s rules).
    Every refusal is raised before anything is written or ``auction``
    changed, so a refused bid leaves the batch as it was; the row itself is
    saved by the caller once the batch is decided."""
    user, amount_minor, max_minor = (
        request.user,
        request.amount_minor,
        request.max_minor,
    )
    _require_open(auction, now)
    floor = cards.next_minor(auction)
    if _offered(request) < floor:
        raise _too_low(floor, auction.currency)
    if (
        max_minor is not None
        and auction.leader_id == user.pk
        and max_minor <= (auction.leader_max_minor or 0)
    ):
        raise BidTooLow(
            _("Your maximum is already %(max)s: raise it above that.")
            % {
                "max": Money(
                    int(auction.leader_max_minor or 0), auction.currency
                ).format()
            }
        )
    placed = _resolve(
        auction, user=user, amount_minor=amount_minor, max_minor=max_minor
    )
    auction.arrivals += 1
    if max_minor is not None:
        AuctionMax.objects.bulk_create(
            [
                AuctionMax(
                    auction=auction,
                    user=user,
                    max_minor=max_minor,
                    placed=auction.arrivals,
                )
            ],
            update_conflicts=True,
            unique_fields=["auction", "user"],
            update_fields=["max_minor", "placed", "updated_at"],
        )
    before = auction.leader_id
    extended = _extend(auction, now) if placed else False
    _apply(auction, placed, now=now, extended=extended)
    if before is not None and before != user.pk and auction.leader_id != before:
        _notify_outbid(auction, before)
    if auction.leader_id != user.pk:
        _notify_outbid(auction, user.pk)
    if max_minor is not None:
        notify_bidder(
            auction,
            user.pk,
            {
                "type": AUCTION_MAX,
                "auction_id": auction.pk,
                "max_minor": max_minor,
                "max": cards.written(max_minor, auction.currency),
            },
        )
    return BidPlaced(
        auction_id=auction.pk,
        ends_at=auction.ends_at,
        leading=auction.leader_id == user.pk,
        next_minor=cards.next_minor(auction),
        currency=auction.currency,
    )


def auction_bid(
    *,
    show: Show,
    user: User,
    auction_id: int,
    amount_minor: int | None = None,
    max_minor: int | None = None,
) -> BidPlaced:
    """Bid in a running auction: ``amount_minor`` (one tap at the shown next
    amount, recorded at that amount) or ``max_minor`` (a proxy maximum: the
    server bids for the user up to it, see ``_resolve``). Needs a saved card.

    Raises ``AuctionInvalid``, ``CardRequired``, ``AuctionNotFound``,
    ``AuctionClosed``, ``BidTooLow`` or ``AlreadyLeading``. Broadcasts one
    ``auction.bid`` per bid placed (a challenger's and a proxy's answer make
    two), notifies ``auction.outbid`` to whoever lost the lead (or never got
    it) and ``auction.max`` to a bidder who set a maximum."""
    request = BidRequest(user=user, amount_minor=amount_minor, max_minor=max_minor)
    (result,) = auction_bids(show=show, auction_id=auction_id, requests=[request])
    if isinstance(result, ShowfloorError):
        raise result
    return result


@dataclass(frozen=True)
class BidRequest:
    """One bid waiting in a process's line (``auction_bids``): a tap at
    ``amount_minor`` or a ``max_minor``, in the bidder's ``language``."""

    user: User
    amount_minor: int | None = None
    max_minor: int | None = None
    language: str = ""


def auction_bids(
    *, show: Show, auction_id: int, requests: Sequence[BidRequest]
) -> list[BidPlaced | ShowfloorError]:
    """Several bids on one auction, decided one after another in the order
    given (``auction_bid``'s rules) and committed together: one read of the
    committed state and the bidders' cards before the lock, then one
    transaction with one wait for the auction's row lock, one save of the
    row, one store of all the events (``events.batched``) and one commit for
    however many bids arrived together. Returns, per request, what
    ``auction_bid`` returns or the refusal it raises; nothing is stored if
    the database fails (the caller answers every bid as not taken)."""
    results: dict[int, BidPlaced | ShowfloorError] = {}
    row, with_card = _committed_state(show, auction_id, requests)
    going = []
    for index, request in enumerate(requests):
        with _speaking(request):
            refused = _refused_before_lock(request, row, with_card)
        if refused is None:
            going.append(index)
        else:
            results[index] = refused
    if going:
        with transaction.atomic(), events.batched():
            auction = (
                Auction.objects.select_for_update()
                .filter(pk=auction_id, show=show)
                .first()
            )
            for index in going:
                with _speaking(requests[index]):
                    try:
                        if auction is None:
                            raise AuctionNotFound()
                        results[index] = _bid_locked(
                            auction, requests[index], timezone.now()
                        )
                    except ShowfloorError as exc:
                        results[index] = exc
            if auction is not None:
                _save_progress(auction)
    return [results[index] for index in range(len(requests))]


def _speaking(request: BidRequest) -> contextlib.AbstractContextManager[Any]:
    return (
        translation.override(request.language)
        if request.language
        else contextlib.nullcontext()
    )


def auction_buy_now(*, show: Show, user: User, auction_id: int) -> BidPlaced:
    """Take the unit at the buy-now price while no bid reached it: the
    auction closes sold to ``user`` at once, then their card is charged.

    Raises ``CardRequired``, ``AuctionNotFound``, ``AuctionClosed`` or
    ``BuyNowUnavailable``. Broadcasts ``auction.bid`` and ``auction.closed``."""
    _require_card(user)
    now = timezone.now()
    with transaction.atomic():
        auction = _locked(show, auction_id)
        _require_open(auction, now)
        if not cards.buy_now_open(auction):
            raise BuyNowUnavailable()
        price = int(auction.buy_now_minor or 0)
        auction.arrivals += 1
        _apply(
            auction,
            [_Placed(user.pk, _name(user), price, buy_now=True)],
            now=now,
            extended=False,
        )
        _save_progress(auction)
        _close_locked(auction, now=now, outcome=Auction.Outcome.SOLD)
    charge_round(auction.pk)
    return BidPlaced(auction_id=auction.pk, ends_at=now, leading=True)


# --- Closing ------------------------------------------------------------------


def _close_locked(auction: Auction, *, now: datetime, outcome: str) -> None:
    """Close a row-locked running auction with ``outcome`` ("sold" only when
    it has a leader at or above the reserve): the winner's order, or the unit
    back to stock; broadcasts ``auction.closed``."""
    if outcome == Auction.Outcome.SOLD and auction.leader_id is None:
        outcome = Auction.Outcome.NO_BIDS
    if outcome == Auction.Outcome.SOLD and not cards.reserve_met(auction):
        outcome = Auction.Outcome.RESERVE_NOT_MET
    auction.status, auction.outcome, auction.closed_at = (
        Auction.Status.CLOSED,
        outcome,
        now,
    )
    Auction.objects.filter(pk=auction.pk).update(
        status=auction.status, outcome=outcome, closed_at=now
    )
    sold = outcome == Auction.Outcome.SOLD
    if sold:
        auction.buyer_name = auction.leader_name
        round_order(
            auction,
            user_id=int(auction.leader_id or 0),
            amount_minor=int(auction.current_minor or 0),
            now=now,
        )
    else:
        unit_back(auction)
    events.broadcast(
        auction.show_id,
        {
            "type": AUCTION_CLOSED,
            "auction_id": auction.pk,
            "outcome": outcome,
            "winner": auction.leader_name if sold else None,
            "amount_minor": auction.current_minor if sold else None,
            "amount": cards.written(auction.current_minor, auction.currency)
            if sold
            else None,
            "bids": auction.bid_count,
            "ends_at": _ms(auction.ends_at),
            "server_now": _ms(now),
        },
    )


def auction_close(*, auction_id: int, now: datetime | None = None) -> datetime | None:
    """Close the auction if its end has come; safe to call from every process
    at once (the row lock lets one close it; the others find it closed). A
    sale's charge follows, outside the transaction.

    Returns None once it is closed, else its (possibly extended) end."""
    now = now or timezone.now()
    with transaction.atomic():
        auction = Auction.objects.select_for_update().filter(pk=auction_id).first()
        if auction is None or auction.status != Auction.Status.RUNNING:
            return None
        if auction.ends_at > now:
            return auction.ends_at
        _close_locked(auction, now=now, outcome=Auction.Outcome.SOLD)
    if auction.outcome == Auction.Outcome.SOLD:
        charge_round(auction.pk)
    return None


def auction_cancel(*, show: Show, user: User, auction_id: int) -> Auction:
    """End a running auction without a sale (owners, hosts, moderators): the
    unit returns to stock. Raises ``NotAHost``, ``AuctionNotFound`` or
    ``AuctionClosed``. Broadcasts ``auction.closed`` (``cancelled``)."""
    _require_staff(show=show, user=user)
    now = timezone.now()
    with transaction.atomic():
        auction = _locked(show, auction_id)
        if auction.status != Auction.Status.RUNNING:
            raise AuctionClosed()
        _close_locked(auction, now=now, outcome=Auction.Outcome.CANCELLED)
    return auction


def auction_close_due(*, now: datetime | None = None, show: Show | None = None) -> int:
    """The sweeper's backstop (each process closes its rooms' auctions on time
    itself, ``live/games/auctions.py``): close the running auctions whose end
    passed, and move sales on whose payment is settled or overdue (a charge
    never tried, a buyer who paid, a ``pay_by`` that passed). Returns how many
    auctions it closed or moved on."""
    now = now or timezone.now()
    running = Auction.objects.filter(status=Auction.Status.RUNNING, ends_at__lte=now)
    if show is not None:
        running = running.filter(show=show)
    done = 0
    for auction_id in list(running.values_list("pk", flat=True)[:200]):
        if auction_close(auction_id=auction_id, now=now) is None:
            done += 1
    if show is None:
        # Only sales with something to do: a charge never tried, a deadline
        # passed, or an order that moved on (paid in the sheet, or closed).
        unsettled = (
            Auction.objects.filter(
                status=Auction.Status.CLOSED,
                outcome=Auction.Outcome.SOLD,
                settlement="",
            )
            .filter(
                Q(charged_round__lt=F("round"))
                | Q(pay_by__lte=now)
                | ~Q(order__status=Order.Status.RESERVED)
            )
            .values_list("pk", flat=True)[:200]
        )
        for auction_id in list(unsettled):
            done += auction_settle(auction_id=auction_id, now=now)
    return done
