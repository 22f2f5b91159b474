"""What the room shows of an auction (docs/auctions.md): the CARD and BID
shapes of the socket protocol, and the snapshot's ``auction`` part.

Amounts go out in integer minor units and written out in every language of
the site (``{"en": "€25.00", "de": "25,00 €", …}``), as the sales' cards do:
one room event serves viewers of every language. Times are the server's
epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from babel.numbers import get_currency_precision
from django.db.models import Q
from django.utils import timezone

from checkout.models import Auction, AuctionMax, Bid, SavedCard
from checkout.money import Money
from checkout.selectors import money_in_every_language
from shows.models import Show, User

# How many bids the card's history carries (newest first).
HISTORY = 20
# A closed auction stays in the snapshot this long, so a viewer who joins just
# after the close still sees how it ended.
CLOSED_VISIBLE_SECONDS = 60

# eBay's table for two-decimal currencies, in minor units: from this price
# on, the next bid is this much higher.
DEFAULT_INCREMENTS = (
    (0, 5),
    (100, 25),
    (500, 50),
    (2500, 100),
    (10000, 250),
    (25000, 500),
    (50000, 1000),
    (100000, 2500),
    (250000, 5000),
    (500000, 10000),
)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def default_increments(currency: str) -> list[list[int]]:
    """The increment table for ``currency``: eBay's, scaled to its minor unit
    (a yen has none, so its steps are whole yen)."""
    scale = 10 ** get_currency_precision(currency)
    return [
        [start * scale // 100, max(1, step * scale // 100)]
        for start, step in DEFAULT_INCREMENTS
    ]


def step_at(increments: list[list[int]], amount_minor: int) -> int:
    """The increment that applies from ``amount_minor`` on."""
    step = increments[0][1]
    for start, size in increments:
        if amount_minor < start:
            break
        step = size
    return int(step)


def next_minor(auction: Auction) -> int:
    """The least amount the next bid may be."""
    if auction.current_minor is None:
        return auction.start_minor
    return auction.current_minor + step_at(auction.increments, auction.current_minor)


def reserve_met(auction: Auction) -> bool:
    return auction.reserve_minor is None or (
        auction.current_minor is not None
        and auction.current_minor >= auction.reserve_minor
    )


def buy_now_open(auction: Auction) -> bool:
    """Buy now is offered until a bid reaches its price."""
    return auction.buy_now_minor is not None and (
        auction.current_minor is None or auction.current_minor < auction.buy_now_minor
    )


@lru_cache(maxsize=4096)
def _written(minor: int, currency: str) -> tuple[tuple[str, str], ...]:
    return tuple(money_in_every_language(Money(minor, currency)).items())


def written(minor: int | None, currency: str) -> dict[str, str] | None:
    """``minor`` written out in every language (None stays None)."""
    return None if minor is None else dict(_written(minor, currency))


def bid_json(bid: Bid, currency: str) -> dict[str, Any]:
    """BID: one accepted bid as the room sees it (a display name, no id)."""
    return {
        "id": bid.pk,
        "amount_minor": bid.amount_minor,
        "amount": written(bid.amount_minor, currency),
        "bidder": bid.bidder_name,
        "at": epoch_ms(bid.created_at),
        "proxy": bid.proxy,
        "buy_now": bid.buy_now,
    }


def price_state(auction: Auction) -> dict[str, Any]:
    """The fields every ``auction.bid`` event and the CARD share."""
    upcoming = next_minor(auction)
    return {
        "current_minor": auction.current_minor,
        "current": written(auction.current_minor, auction.currency),
        "next_minor": upcoming,
        "next": written(upcoming, auction.currency),
        "leader": auction.leader_name or None,
        # The leader's user id, as chat lines carry their author's: a page
        # tells its own viewer from a namesake by it.
        "leader_id": auction.leader_id,
        "bids": auction.bid_count,
        "ends_at": epoch_ms(auction.ends_at),
        "reserve_met": reserve_met(auction),
        "buy_now_open": auction.status == Auction.Status.RUNNING
        and buy_now_open(auction),
    }


def auction_card(
    auction: Auction, *, history: list[Bid], now: datetime | None = None
) -> dict[str, Any]:
    """CARD: the auction as ``auction.started`` and the snapshot carry it,
    with the rule of its close and its numbers for bidders to read."""
    now = now or timezone.now()
    product, variant = auction.product, auction.variant
    sold = auction.outcome == Auction.Outcome.SOLD
    return {
        "id": auction.pk,
        "status": auction.status,
        "product": {
            "id": product.pk,
            "name": product.name,
            "image": product.picture_url or None,
        },
        "variant": {"id": variant.pk, "name": variant.name},
        "currency": auction.currency,
        "start_minor": auction.start_minor,
        "start": written(auction.start_minor, auction.currency),
        **price_state(auction),
        "increments": auction.increments,
        "has_reserve": auction.reserve_minor is not None,
        "buy_now_minor": auction.buy_now_minor,
        "buy_now": written(auction.buy_now_minor, auction.currency),
        "started_at": epoch_ms(auction.started_at),
        "close": auction.close,
        "extend_within_seconds": auction.extend_within_seconds,
        "extend_by_seconds": auction.extend_by_seconds,
        "extensions": auction.extensions,
        "history": [bid_json(bid, auction.currency) for bid in history],
        "outcome": auction.outcome or None,
        "winner": (auction.leader_name or None) if sold else None,
        "amount_minor": auction.current_minor if sold else None,
        "settlement": auction.settlement or None,
        "server_now": epoch_ms(now),
    }


def auction_history(auction: Auction) -> list[Bid]:
    return list(Bid.objects.filter(auction=auction).order_by("-id")[:HISTORY])


def room_auction(*, show: Show, user: User | None = None) -> dict[str, Any]:
    """The snapshot's ``auction``: the running auction's CARD, or the one
    closed in the last minute, plus for a signed-in viewer their proxy
    maximum (``my_max_minor``, ``my_max``) and whether they have a saved card
    (``card_saved``); None when there is none. Two queries, four for a
    signed-in viewer. Passed to ``room_snapshot_now`` through the games
    registry (``live/games/auctions.py``)."""
    now = timezone.now()
    # The running one is the show's newest: one query either way.
    auction = (
        Auction.objects.filter(show=show)
        .filter(
            Q(status=Auction.Status.RUNNING)
            | Q(closed_at__gte=now - timedelta(seconds=CLOSED_VISIBLE_SECONDS))
        )
        .select_related("product", "variant")
        .order_by("-id")
        .first()
    )
    if auction is None:
        return {"auction": None}
    card = auction_card(auction, history=auction_history(auction), now=now)
    if user is not None and user.is_authenticated:
        mine = (
            AuctionMax.objects.filter(auction=auction, user=user)
            .values_list("max_minor", flat=True)
            .first()
        )
        card["my_max_minor"] = mine
        card["my_max"] = written(mine, auction.currency)
        card["card_saved"] = (
            SavedCard.objects.filter(user=user).exclude(payment_method_id="").exists()
        )
    return {"auction": card}
