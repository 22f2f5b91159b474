"""Auctions: increments, proxy bidding and its ties, anti-sniping, the close,
stock taken once, the winner's charge and the next bidder's offer."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checkout import auction_cards
from checkout.exceptions import (
    AlreadyLeading,
    AuctionClosed,
    AuctionRunning,
    BidTooLow,
    BuyNowUnavailable,
    CardRequired,
    NotAHost,
    ShowNotLive,
    SoldOut,
    VariantRequired,
)
from checkout.models import Auction, AuctionMax, Bid, Order, Payment, SavedCard
from checkout.services import (
    BidRequest,
    auction_bid,
    auction_bids,
    auction_buy_now,
    auction_cancel,
    auction_close,
    auction_close_due,
    auction_settle,
    auction_start,
)
from checkout.services.cards import saved_card_setup
from shows import services as show_services
from shows.exceptions import NotInLineup
from shows.models import Variant
from tests.checkout.conftest import of_type

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bidder(make_user):
    """``bidder("Ann")``: a signed-in user with a saved card (not at Stripe:
    bids never call it)."""
    count = {"n": 0}

    def make(name: str):
        count["n"] += 1
        user = make_user(name)
        SavedCard.objects.create(
            user=user,
            customer_id=f"cus_fake_{user.pk}",
            payment_method_id=f"pm_fake_{user.pk}",
            brand="visa",
            last4="4242",
        )
        return user

    return make


def stripe_bidder(make_user, name: str, method: str = "pm_card_visa"):
    """A user whose card is saved at localstripe through the setup flow."""
    user = make_user(name)
    setup = saved_card_setup(user=user, test_payment_method=method)
    assert setup.status == "succeeded"
    assert setup.saved_card is not None
    return user


def start(show, host, product, **kw):
    """An auction from €10.00 stepping by €1.00 (unless told otherwise)."""
    fields = {"start_minor": 1000, "duration_seconds": 60, "increments": [[0, 100]]}
    fields.update(kw)
    return auction_start(show=show, user=host, product_id=product.pk, **fields)


def end_now(auction):
    Auction.objects.filter(pk=auction.pk).update(
        ends_at=timezone.now() - timedelta(milliseconds=1)
    )


def test_a_batchs_events_cost_no_statement_per_bid(live_show, products, host, bidder):
    """One accepted tap more in a batch costs one statement (its bid row):
    the row lock, the row's save, the events' seqs and their INSERT are once
    per batch, however many bids and events (``auction.bid``, ``outbid``)
    it makes."""
    crowd = [bidder(f"Bidder {n}") for n in range(4)]

    def statements(taps: list[int]) -> int:
        auction = start(live_show, host, products[1])
        requests = [
            BidRequest(user=crowd[n], amount_minor=amount)
            for n, amount in enumerate(taps)
        ]
        with CaptureQueriesContext(connection) as queries:
            results = auction_bids(
                show=live_show, auction_id=auction.pk, requests=requests
            )
        assert all(type(r).__name__ == "BidPlaced" for r in results)
        auction_cancel(show=live_show, user=host, auction_id=auction.pk)
        return len(queries.captured_queries)

    one, three = statements([1000]), statements([1000, 1100, 1200])
    assert three - one == 2


def test_a_bid_that_waited_for_the_lock_is_timed_when_it_is_decided(
    live_show, products, host, bidder
):
    """Anti-sniping counts from the moment a bid is decided under the lock:
    a bid that waited there while the end moved still moves it to
    ``extend_by_seconds`` after itself (it used to keep the time it arrived,
    fall outside the window and extend nothing)."""
    auction = start(live_show, host, products[1])
    Auction.objects.filter(pk=auction.pk).update(
        ends_at=timezone.now() + timedelta(seconds=5)
    )
    ann = bidder("Ann")
    locked, release = threading.Event(), threading.Event()
    released_at = []

    def hold_the_lock() -> None:
        try:
            with transaction.atomic():
                Auction.objects.select_for_update().get(pk=auction.pk)
                locked.set()
                release.wait(5)
                released_at.append(timezone.now())
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert locked.wait(5)
    threading.Timer(0.5, release.set).start()
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1000)
    holder.join(5)
    bid = Bid.objects.get(auction=auction)
    assert bid.created_at >= released_at[0]
    auction.refresh_from_db()
    assert auction.ends_at == bid.created_at + timedelta(seconds=10)
    assert auction.extensions == 1


def test_the_increment_table_decides_the_next_amount(live_show, products, host, bidder):
    """The default table (eBay's): €0.50 steps from €5.00, €1.00 from
    €25.00, €2.50 from €100.00; a tap below the next amount is refused with
    the amount in the message."""
    auction = start(live_show, host, products[1], start_minor=2400, increments=None)
    ann, bob = bidder("Ann"), bidder("Bob")
    with pytest.raises(BidTooLow) as refused:
        auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=2300)
    assert "€24.00" in refused.value.message
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=2400)
    auction.refresh_from_db()
    assert auction_cards.next_minor(auction) == 2450
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=9950)
    auction.refresh_from_db()
    assert auction_cards.next_minor(auction) == 10050
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=10050)
    auction.refresh_from_db()
    assert auction_cards.next_minor(auction) == 10300
    assert auction.bid_count == 3


def test_bids_that_arrive_together_are_decided_in_order_and_committed_together(
    live_show, products, host, bidder, make_user, sent
):
    """A process's line hands its waiting bids over at once: each is decided
    in arrival order as alone; a refusal changes nothing of the others; one
    below the amount the bid before it left is refused without a query, in
    its bidder's language; the events leave in order after the one commit."""
    auction = start(live_show, host, products[1])
    ann, bob, cat = bidder("Ann"), bidder("Bob"), bidder("Cat")
    no_card = make_user("No Card")
    requests = [
        BidRequest(user=ann, amount_minor=1000),
        BidRequest(user=no_card, amount_minor=1100),
        BidRequest(user=bob, amount_minor=1000, language="de"),
        BidRequest(user=cat, max_minor=5000),
        BidRequest(user=ann, amount_minor=1100),
        BidRequest(user=bob, amount_minor=2000),
    ]
    with CaptureQueriesContext(connection) as queries:
        results = auction_bids(show=live_show, auction_id=auction.pk, requests=requests)
    assert [type(r).__name__ for r in results] == [
        "BidPlaced",
        "CardRequired",
        "BidTooLow",
        "BidPlaced",
        "BidTooLow",
        "BidPlaced",
    ]
    # Bob's tap at €10.00 came after Ann's: refused from what hers left.
    assert (results[2].floor, results[2].currency) == (1100, "EUR")
    assert results[2].message == "Das nächste Gebot beträgt mindestens 11,00\xa0€."
    # Cat's maximum leads at €11.00, one step above Ann's €10.00: the next
    # amount is €12.00, so Ann's tap at €11.00 is refused too.
    assert results[3].next_minor == 1200
    assert results[4].floor == 1200
    assert sum(q["sql"] == "COMMIT" for q in queries.captured_queries) == 1
    auction.refresh_from_db()
    assert (auction.current_minor, auction.leader_id) == (2100, cat.pk)
    assert auction.arrivals == 3
    assert [
        (b.bidder_id, b.amount_minor, b.proxy)
        for b in Bid.objects.filter(auction=auction).order_by("pk")
    ] == [
        (ann.pk, 1000, False),
        (cat.pk, 1100, False),
        (bob.pk, 2000, False),
        (cat.pk, 2100, True),
    ]
    assert [e["bid"]["amount_minor"] for e in of_type(sent, "auction.bid")] == [
        1000,
        1100,
        2000,
        2100,
    ]


def test_a_custom_increment_table_is_kept_and_used(live_show, products, host, bidder):
    auction = start(live_show, host, products[1], increments=[[0, 100], [5000, 1000]])
    assert auction.increments == [[0, 100], [5000, 1000]]
    auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=5000
    )
    auction.refresh_from_db()
    assert auction_cards.next_minor(auction) == 6000


def test_a_bid_needs_a_saved_card_and_changes_nothing_without_one(
    live_show, products, host, make_user, sent
):
    auction = start(live_show, host, products[1])
    with pytest.raises(CardRequired):
        auction_bid(
            show=live_show,
            user=make_user("No Card"),
            auction_id=auction.pk,
            amount_minor=1000,
        )
    auction.refresh_from_db()
    assert auction.bid_count == 0
    assert auction.current_minor is None
    assert of_type(sent, "auction.bid") == []


def test_the_leaders_proxy_answers_one_increment_above_up_to_its_maximum(
    live_show, products, host, bidder, sent
):
    """Two events in order: the challenger's bid, then the proxy's answer;
    the challenger is told they were outbid."""
    auction = start(live_show, host, products[1])
    ann, bob = bidder("Ann"), bidder("Bob")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=5000)
    auction.refresh_from_db()
    assert (auction.current_minor, auction.leader_id) == (1000, ann.pk)
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=2000)
    auction.refresh_from_db()
    assert (auction.current_minor, auction.leader_id) == (2100, ann.pk)
    bids = of_type(sent, "auction.bid")
    assert [(e["bid"]["bidder"], e["bid"]["amount_minor"]) for e in bids] == [
        ("Ann", 1000),
        ("Bob", 2000),
        ("Ann", 2100),
    ]
    assert [e["bid"]["proxy"] for e in bids] == [False, False, True]
    assert bids[-1]["leader"] == "Ann"
    assert bids[-1]["next_minor"] == 2200
    assert bids[-1]["current"]["de"] == "21,00\xa0€"
    outbid = [(t, e) for kind, t, e in sent if e["type"] == "auction.outbid"]
    assert outbid == [
        (
            f"user:{bob.pk}",
            {
                "type": "auction.outbid",
                "auction_id": auction.pk,
                "amount_minor": 2100,
                "amount": outbid[0][1]["amount"],
            },
        )
    ]


def test_a_challenger_above_the_leaders_maximum_leads_one_increment_above_it(
    live_show, products, host, bidder, sent
):
    auction = start(live_show, host, products[1])
    ann, bob = bidder("Ann"), bidder("Bob")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=5000)
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, max_minor=8000)
    auction.refresh_from_db()
    assert (auction.current_minor, auction.leader_id) == (5100, bob.pk)
    assert auction.leader_max_minor == 8000
    bids = of_type(sent, "auction.bid")
    assert [(e["bid"]["bidder"], e["bid"]["amount_minor"]) for e in bids] == [
        ("Ann", 1000),
        ("Ann", 5000),
        ("Bob", 5100),
    ]
    assert of_type(sent, "auction.outbid")[0]["amount_minor"] == 5100
    maxes = dict(
        AuctionMax.objects.filter(auction=auction).values_list("user_id", "max_minor")
    )
    assert maxes == {ann.pk: 5000, bob.pk: 8000}


@pytest.mark.parametrize("first", ["Ann", "Bob"])
def test_equal_maximums_go_to_the_one_that_arrived_first(
    live_show, products, host, bidder, first
):
    auction = start(live_show, host, products[1])
    users = {"Ann": bidder("Ann"), "Bob": bidder("Bob")}
    second = "Bob" if first == "Ann" else "Ann"
    for name in (first, second):
        auction_bid(
            show=live_show, user=users[name], auction_id=auction.pk, max_minor=6000
        )
    auction.refresh_from_db()
    assert auction.leader_id == users[first].pk
    assert auction.current_minor == 6000


def test_a_tap_equal_to_the_leaders_maximum_loses_to_it(
    live_show, products, host, bidder
):
    auction = start(live_show, host, products[1])
    ann, bob = bidder("Ann"), bidder("Bob")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=3000)
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=3000)
    auction.refresh_from_db()
    assert (auction.current_minor, auction.leader_id) == (3000, ann.pk)


def test_the_leader_may_raise_their_maximum_but_not_tap(
    live_show, products, host, bidder, sent
):
    auction = start(live_show, host, products[1])
    ann = bidder("Ann")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1000)
    with pytest.raises(AlreadyLeading):
        auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1100)
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=4000)
    with pytest.raises(BidTooLow):
        auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=4000)
    auction.refresh_from_db()
    assert (auction.current_minor, auction.bid_count) == (1000, 1)
    assert auction.leader_max_minor == 4000
    (held,) = of_type(sent, "auction.max")
    assert held["max_minor"] == 4000
    assert held["max"]["en"] == "€40.00"


def test_a_maximum_reaching_the_reserve_bids_up_to_it(
    live_show, products, host, bidder
):
    auction = start(live_show, host, products[1], reserve_minor=3000)
    auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, max_minor=5000
    )
    auction.refresh_from_db()
    assert auction.current_minor == 3000
    assert auction_cards.reserve_met(auction)


def test_a_late_bid_extends_the_close_and_never_shortens_it(
    live_show, products, host, bidder, sent
):
    auction = start(
        live_show, host, products[1], extend_within_seconds=10, extend_by_seconds=15
    )
    Auction.objects.filter(pk=auction.pk).update(
        ends_at=timezone.now() + timedelta(seconds=5)
    )
    before = timezone.now()
    placed = auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=1000
    )
    assert placed.ends_at >= before + timedelta(seconds=15)
    (event,) = of_type(sent, "auction.bid")
    assert event["extended"] is True
    assert event["ends_at"] == auction_cards.epoch_ms(placed.ends_at)
    # Twelve seconds left is outside the window: no move.
    Auction.objects.filter(pk=auction.pk).update(
        ends_at=timezone.now() + timedelta(seconds=12)
    )
    auction.refresh_from_db()
    kept = auction.ends_at
    placed = auction_bid(
        show=live_show, user=bidder("Bob"), auction_id=auction.pk, amount_minor=1100
    )
    assert placed.ends_at == kept
    assert of_type(sent, "auction.bid")[-1]["extended"] is False
    auction.refresh_from_db()
    assert auction.extensions == 1


def test_sudden_death_is_never_extended(live_show, products, host, bidder, sent):
    auction = start(live_show, host, products[1], close="sudden_death")
    soon = timezone.now() + timedelta(seconds=2)
    Auction.objects.filter(pk=auction.pk).update(ends_at=soon)
    placed = auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=1000
    )
    assert placed.ends_at == soon
    assert of_type(sent, "auction.bid")[0]["extended"] is False


def test_a_bid_after_the_end_is_refused_even_before_the_close_ran(
    live_show, products, host, bidder
):
    auction = start(live_show, host, products[1])
    end_now(auction)
    with pytest.raises(AuctionClosed):
        auction_bid(
            show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=1000
        )
    assert Bid.objects.count() == 0


def test_starting_takes_one_unit_and_a_reserve_not_met_gives_it_back(
    live_show, products, host, bidder, mic, sent
):
    auction = start(live_show, host, products[1], reserve_minor=5000)
    mic.refresh_from_db()
    assert mic.stock_available == 9
    auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=1000
    )
    end_now(auction)
    assert auction_close(auction_id=auction.pk) is None
    auction.refresh_from_db()
    assert (auction.status, auction.outcome) == ("closed", "reserve_not_met")
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert Order.objects.count() == 0
    (closed,) = of_type(sent, "auction.closed")
    assert closed["outcome"] == "reserve_not_met"
    assert closed["winner"] is None


def test_an_auction_without_bids_closes_with_no_bids_and_its_unit_back(
    live_show, products, host, mic, sent
):
    auction = start(live_show, host, products[1])
    end_now(auction)
    assert auction_close_due() == 1
    assert auction_close_due() == 0
    auction.refresh_from_db()
    assert auction.outcome == "no_bids"
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert len(of_type(sent, "auction.closed")) == 1


def test_an_auction_not_yet_due_is_not_closed(live_show, products, host):
    auction = start(live_show, host, products[1])
    assert auction_close(auction_id=auction.pk) == Auction.objects.get().ends_at
    auction.refresh_from_db()
    assert auction.status == "running"


def test_cancel_ends_it_without_a_sale_and_returns_the_unit(
    live_show, products, host, moderator, make_user, bidder, mic, sent
):
    auction = start(live_show, host, products[1])
    auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=1000
    )
    with pytest.raises(NotAHost):
        auction_cancel(show=live_show, user=make_user("Vera"), auction_id=auction.pk)
    auction_cancel(show=live_show, user=moderator, auction_id=auction.pk)
    with pytest.raises(AuctionClosed):
        auction_cancel(show=live_show, user=moderator, auction_id=auction.pk)
    auction.refresh_from_db()
    assert auction.outcome == "cancelled"
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert Order.objects.count() == 0
    assert of_type(sent, "auction.closed")[0]["outcome"] == "cancelled"


def test_who_may_start_and_what_an_auction_needs(
    show, live_show, products, host, moderator, make_user, brand
):
    viewer = make_user("Vera")
    with pytest.raises(NotAHost):
        start(live_show, viewer, products[1])
    # A product with two options needs one named.
    show_services.variant_create(
        product=products[1],
        sku="SKU-1-B",
        name="Black",
        price_minor=8900,
        currency="EUR",
        stock_available=3,
    )
    with pytest.raises(VariantRequired):
        start(live_show, moderator, products[1])
    other = show_services.product_create(brand=brand, name="Not in the show")
    with pytest.raises(NotInLineup):
        start(live_show, moderator, other)
    with pytest.raises(SoldOut):
        start(live_show, moderator, products[2])
    variant = products[1].variants.order_by("id").first()
    auction = start(live_show, moderator, products[1], variant_id=variant.pk)
    assert auction.variant_id == variant.pk
    with pytest.raises(AuctionRunning):
        start(live_show, host, products[0])
    owner = make_user("Olive Owner")
    show_services.membership_set(brand=brand, user=owner, role="owner")
    auction_cancel(show=live_show, user=owner, auction_id=auction.pk)
    assert start(live_show, owner, products[0]).pk != auction.pk


def test_a_show_that_is_not_live_has_no_auction(show, products, host):
    with pytest.raises(ShowNotLive):
        start(show, host, products[1])


def test_buy_now_closes_the_auction_sold_and_charges_the_card_once(
    live_show, products, host, make_user, stripe_settings, mic, sent
):
    auction = start(live_show, host, products[1], buy_now_minor=20000)
    buyer = stripe_bidder(make_user, "Bea")
    auction_buy_now(show=live_show, user=buyer, auction_id=auction.pk)
    auction.refresh_from_db()
    assert (auction.outcome, auction.settlement) == ("sold", "paid")
    order = Order.objects.get(auction=auction)
    assert (order.status, order.total_minor, order.buyer_id) == (
        "paid",
        20000,
        buyer.pk,
    )
    assert Payment.objects.get(order=order).status == "succeeded"
    (won,) = of_type(sent, "auction.won")
    assert won["status"] == "paid"
    assert won["order_id"] == str(order.public_id)
    mic.refresh_from_db()
    assert mic.stock_available == 9
    with pytest.raises(AuctionClosed):
        auction_buy_now(show=live_show, user=buyer, auction_id=auction.pk)


def test_buy_now_is_gone_once_a_bid_reaches_its_price(
    live_show, products, host, bidder
):
    auction = start(live_show, host, products[1], buy_now_minor=3000)
    auction_bid(
        show=live_show, user=bidder("Ann"), auction_id=auction.pk, amount_minor=3000
    )
    with pytest.raises(BuyNowUnavailable):
        auction_buy_now(show=live_show, user=bidder("Bob"), auction_id=auction.pk)


def test_the_close_makes_exactly_one_order_and_one_charge(
    live_show, products, host, make_user, stripe_settings, mic, sent
):
    """Closed three times (two timers and the sweeper): one order, reserved
    then paid by the off-session charge through ``order_mark_paid``, with the
    auction's bids kept with it."""
    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann")
    bob = stripe_bidder(make_user, "Bob")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=4000)
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=2500)
    end_now(auction)
    assert auction_close(auction_id=auction.pk) is None
    assert auction_close(auction_id=auction.pk) is None
    auction_close_due()
    order = Order.objects.get()
    assert order.auction_id == auction.pk
    assert (order.status, order.total_minor, order.buyer_id) == ("paid", 2600, ann.pk)
    assert order.idempotency_key == f"auction:{auction.pk}:round:0"
    line = order.lines.get()
    assert (line.unit_price_minor, line.quantity, line.variant_id) == (
        2600,
        1,
        mic.pk,
    )
    payment = Payment.objects.get(order=order)
    assert payment.status == "succeeded"
    assert payment.captured_minor == 2600
    assert payment.intent_id.startswith("pi_")
    auction.refresh_from_db()
    assert auction.settlement == "paid"
    closed = of_type(sent, "auction.closed")
    assert [(e["outcome"], e["winner"], e["amount_minor"]) for e in closed] == [
        ("sold", "Ann", 2600)
    ]
    assert [e["outcome"] for e in of_type(sent, "auction.settled")] == ["paid"]
    assert [e["status"] for e in of_type(sent, "auction.won")] == ["paid"]
    mic.refresh_from_db()
    assert mic.stock_available == 9
    # The history stays with the order.
    history = list(
        order.auction.bids.order_by("id").values_list("amount_minor", flat=True)
    )
    assert history == [1000, 2500, 2600]


def test_a_failed_charge_waits_for_the_winner_then_offers_the_next_bidder(
    live_show, products, host, make_user, stripe_settings, mic, sent
):
    """The winner's card is declined: ``auction.won`` ``pay_now`` with
    ``pay_by``, the order stays reserved and payable in the sheet; when
    ``pay_by`` passes the order expires and the runner-up is offered the unit
    at their highest bid, charged, paid. The unit was taken once."""
    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann", "pm_card_chargeCustomerFail")
    bob = stripe_bidder(make_user, "Bob")
    carl = stripe_bidder(make_user, "Carl")
    auction_bid(show=live_show, user=carl, auction_id=auction.pk, amount_minor=1000)
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=2000)
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=3000)
    end_now(auction)
    auction_close(auction_id=auction.pk)
    first = Order.objects.get()
    assert (first.status, first.buyer_id, first.total_minor) == (
        "reserved",
        ann.pk,
        3000,
    )
    (won,) = of_type(sent, "auction.won")
    auction.refresh_from_db()
    assert won["status"] == "pay_now"
    assert won["pay_by"] == auction_cards.epoch_ms(auction.pay_by)
    assert auction.pay_by > timezone.now() + timedelta(seconds=500)
    # The sheet can pay it: the order has its own intent.
    assert Payment.objects.get(order=first).intent_id
    assert auction_settle(auction_id=auction.pk) == 0  # not due yet
    assert auction.settlement == ""

    auction_settle(auction_id=auction.pk, now=auction.pay_by + timedelta(seconds=1))
    first.refresh_from_db()
    assert first.status == "expired"
    second = Order.objects.exclude(pk=first.pk).get()
    assert (second.status, second.buyer_id, second.total_minor) == (
        "paid",
        bob.pk,
        2000,
    )
    assert second.auction_id == auction.pk
    (offered,) = of_type(sent, "auction.offered")
    assert (offered["to"], offered["amount_minor"]) == ("Bob", 2000)
    assert offered["amount"]["fr"] == "20,00\xa0€"
    auction.refresh_from_db()
    assert auction.settlement == "paid"
    assert [e["outcome"] for e in of_type(sent, "auction.settled")] == ["paid"]
    assert Payment.objects.filter(status="succeeded").count() == 1
    mic.refresh_from_db()
    assert mic.stock_available == 9


def test_when_nobody_pays_the_sale_settles_unpaid_and_the_unit_returns(
    live_show, products, host, make_user, stripe_settings, mic, sent
):
    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann", "pm_card_chargeCustomerFail")
    bob = stripe_bidder(make_user, "Bob", "pm_card_chargeCustomerFail")
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=1000)
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1100)
    end_now(auction)
    auction_close(auction_id=auction.pk)
    for _round in range(2):
        auction.refresh_from_db()
        auction_settle(auction_id=auction.pk, now=auction.pay_by + timedelta(seconds=1))
    auction.refresh_from_db()
    assert auction.settlement == "unpaid"
    assert sorted(Order.objects.values_list("status", flat=True)) == [
        "expired",
        "expired",
    ]
    assert [e["outcome"] for e in of_type(sent, "auction.settled")] == ["unpaid"]
    assert [e["status"] for e in of_type(sent, "auction.won")] == ["pay_now", "pay_now"]
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert Payment.objects.filter(status="succeeded").count() == 0


def test_the_winner_is_told_once_when_the_sweeper_settles_between_charge_and_notice(
    live_show, products, host, make_user, stripe_settings, mic, sent, monkeypatch
):
    """The sweeper's pass may find the order paid before the charge's own
    ``_paid`` ran: whichever settles tells the winner, exactly once."""
    from checkout.services import auction_sales

    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1000)
    end_now(auction)
    original = auction_sales._paid
    sweeps: list[int] = []

    def sweep_first(auction_id, *, notify):
        # The sweeper runs right after order_mark_paid, before this notice.
        sweeps.append(auction_settle(auction_id=auction_id))
        original(auction_id, notify=notify)

    monkeypatch.setattr(auction_sales, "_paid", sweep_first)
    auction_close(auction_id=auction.pk)
    assert sweeps == [1]
    auction.refresh_from_db()
    assert auction.settlement == "paid"
    assert [e["status"] for e in of_type(sent, "auction.won")] == ["paid"]
    assert [e["outcome"] for e in of_type(sent, "auction.settled")] == ["paid"]


def test_saving_a_card_before_bidding_keeps_it_for_off_session_use(
    make_user, stripe_settings
):
    user = make_user("Sam")
    setup = saved_card_setup(user=user)
    assert setup.status == "succeeded"
    card = SavedCard.objects.get(user=user)
    assert card.payment_method_id.startswith("pm_")
    assert setup.saved_card == {
        "brand": "Visa",
        "last4": "4242",
        "label": "Visa •••• 4242",
    }


def test_the_snapshot_part_shows_the_card_and_the_viewers_maximum(
    live_show, products, host, bidder, make_user, django_assert_max_num_queries
):
    auction = start(live_show, host, products[1], reserve_minor=2000)
    ann = bidder("Ann")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, max_minor=1500)
    with django_assert_max_num_queries(4):
        part = auction_cards.room_auction(show=live_show, user=ann)
    card = part["auction"]
    assert card["id"] == auction.pk
    assert card["status"] == "running"
    # Up to the reserve, as far as the maximum goes.
    assert (card["current_minor"], card["leader"], card["bids"]) == (1500, "Ann", 1)
    assert card["has_reserve"] is True
    assert card["reserve_met"] is False
    assert (card["close"], card["extend_within_seconds"]) == ("extend", 10)
    assert card["history"][0]["bidder"] == "Ann"
    assert (card["my_max_minor"], card["card_saved"]) == (1500, True)
    assert card["my_max"]["en"] == "€15.00"
    other = auction_cards.room_auction(show=live_show, user=make_user("No Card"))
    assert other["auction"]["card_saved"] is False
    assert other["auction"]["my_max_minor"] is None
    anonymous = auction_cards.room_auction(show=live_show, user=None)
    assert "my_max_minor" not in anonymous["auction"]


def test_a_closed_auction_stays_in_the_snapshot_for_a_minute(live_show, products, host):
    auction = start(live_show, host, products[1])
    end_now(auction)
    auction_close(auction_id=auction.pk)
    assert auction_cards.room_auction(show=live_show)["auction"]["outcome"] == "no_bids"
    Auction.objects.filter(pk=auction.pk).update(
        closed_at=timezone.now() - timedelta(seconds=61)
    )
    assert auction_cards.room_auction(show=live_show) == {"auction": None}


@pytest.mark.slow
def test_bidders_racing_in_threads_leave_the_highest_maximum_winning(
    postgres, live_show, products, host, bidder, mic, stripe_settings
):
    """40 bidders in 8 threads send their maximums at once against
    PostgreSQL: every bid is serialised by the row lock, the highest maximum
    wins at one increment above the second (never above its own maximum),
    the running price only rises, and the unit is taken once."""
    auction = start(live_show, host, products[1], increments=[[0, 10]])
    users = [bidder(f"Racer {n}") for n in range(40)]
    # Distinct maximums in shuffled order; the top two are 1400 and 1390.
    maxima = {user.pk: 1000 + 10 * ((n * 17) % 41) for n, user in enumerate(users)}
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def run(chunk):
        try:
            barrier.wait()
            for user in chunk:
                with contextlib.suppress(BidTooLow):
                    auction_bid(
                        show=live_show,
                        user=user,
                        auction_id=auction.pk,
                        max_minor=maxima[user.pk],
                    )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(users[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    auction.refresh_from_db()
    top = max(maxima, key=lambda pk: maxima[pk])
    second = sorted(maxima.values())[-2]
    assert auction.leader_id == top
    # The runner-up's maximum may have come too late to be accepted (the
    # price had passed it): then the one before it set the price.
    assert auction.current_minor in (second, min(maxima[top], second + 10))
    amounts = list(
        Bid.objects.filter(auction=auction)
        .order_by("id")
        .values_list("amount_minor", flat=True)
    )
    assert amounts == sorted(amounts)
    assert auction.bid_count == len(amounts)
    end_now(auction)
    results = []

    def close() -> None:
        results.append(auction_close(auction_id=auction.pk))
        connection.close()

    closers = [threading.Thread(target=close) for _ in range(4)]
    for thread in closers:
        thread.start()
    for thread in closers:
        thread.join()
    assert results == [None] * 4
    order = Order.objects.get(auction=auction)
    assert (order.buyer_id, order.total_minor) == (top, auction.current_minor)
    assert Variant.objects.get(pk=mic.pk).stock_available == 9


def test_the_off_session_charge_sends_only_published_stripe_parameters(
    live_show, products, host, make_user, stripe_settings, monkeypatch
):
    """The charge's create and confirm, checked against the ``stripe``
    library's declared parameters as ``test_gateway_params`` checks the
    other flows."""
    from checkout import stripe_gateway as gateway
    from tests.checkout.test_gateway_params import params_type, problems

    calls = []
    real = gateway._call

    def record(what, fn, *args, **kwargs):
        calls.append((what, fn, kwargs.get("params") or {}))
        return real(what, fn, *args, **kwargs)

    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1000)
    end_now(auction)
    monkeypatch.setattr(gateway, "_call", record)
    auction_close(auction_id=auction.pk)
    sent = {what: params for what, _, params in calls}
    assert sent["intent_confirm"]["off_session"] is True
    assert sent["intent_create"]["automatic_payment_methods"] == {
        "enabled": True,
        "allow_redirects": "never",
    }
    assert "order" not in sent["intent_create"]["metadata"]
    found = []
    for what, method, params in calls:
        declared = params_type(method)
        found += [
            f"{what} {problem}"
            for problem in problems(params, declared, "", declared.__module__)
        ]
    assert found == []
    assert Order.objects.get().status == "paid"


def test_the_card_setup_endpoint_saves_a_card_for_a_signed_in_buyer(
    client, make_user, stripe_settings
):
    refused = client.post(
        "/api/me/card/setup", data="{}", content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "login_required"
    user = make_user("Sam")
    client.force_login(user)
    answer = client.post(
        "/api/me/card/setup", data="{}", content_type="application/json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "succeeded"
    assert body["setup_intent_id"].startswith("seti_")
    assert body["saved_card"]["last4"] == "4242"
    assert SavedCard.objects.get(user=user).usable


def test_a_declined_charges_webhook_leaves_the_order_payable_in_the_sheet(
    live_show, products, host, make_user, stripe_settings, settings, sent
):
    """Stripe reports the declined off-session charge: the order stays
    reserved, the winner pays it in the sheet as any order, and the sale is
    settled paid on the next pass."""
    import json

    from checkout.services import Buyer, order_pay
    from checkout.webhooks import webhook_receive
    from tests.checkout.conftest import sign

    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann", "pm_card_chargeCustomerFail")
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1000)
    end_now(auction)
    auction_close(auction_id=auction.pk)
    auction.refresh_from_db()
    order = Order.objects.get()
    assert auction.charge_intent_id.startswith("pi_")
    payload = json.dumps(
        {
            "id": "evt_auction_declined",
            "type": "payment_intent.payment_failed",
            "data": {
                "object": {
                    "object": "payment_intent",
                    "id": auction.charge_intent_id,
                    "status": "requires_payment_method",
                    "amount": 1000,
                    "currency": "eur",
                    "metadata": {"auction_order": str(order.public_id)},
                    "last_payment_error": {"code": "card_declined"},
                }
            },
        }
    ).encode()
    webhook_receive(
        payload=payload, signature=sign(payload, settings.STRIPE_WEBHOOK_SECRET)
    )
    order.refresh_from_db()
    assert order.status == "reserved"
    paid = order_pay(order=order, buyer=Buyer(user=ann), method="test")
    assert paid.outcome == "paid"
    assert auction_close_due() >= 1
    auction.refresh_from_db()
    assert auction.settlement == "paid"
    assert [e["outcome"] for e in of_type(sent, "auction.settled")] == ["paid"]


def test_a_winner_who_cancels_passes_the_unit_to_the_next_bidder(
    live_show, products, host, make_user, stripe_settings, mic, sent
):
    """The cancelled order gave the unit back to stock: the offer takes it
    again, once."""
    from checkout.services import order_cancel

    auction = start(live_show, host, products[1])
    ann = stripe_bidder(make_user, "Ann", "pm_card_chargeCustomerFail")
    bob = stripe_bidder(make_user, "Bob")
    auction_bid(show=live_show, user=bob, auction_id=auction.pk, amount_minor=1000)
    auction_bid(show=live_show, user=ann, auction_id=auction.pk, amount_minor=1500)
    end_now(auction)
    auction_close(auction_id=auction.pk)
    first = Order.objects.get()
    order_cancel(order=first)
    mic.refresh_from_db()
    assert mic.stock_available == 10
    auction_settle(auction_id=auction.pk)
    second = Order.objects.exclude(pk=first.pk).get()
    assert (second.buyer_id, second.total_minor, second.status) == (
        bob.pk,
        1000,
        "paid",
    )
    mic.refresh_from_db()
    assert mic.stock_available == 9
    assert of_type(sent, "auction.offered")[0]["to"] == "Bob"
