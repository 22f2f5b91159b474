"""The auction through the room's socket: who may start and cancel, bids
answered ``ack`` or ``error`` with the protocol's codes, the snapshot's
``auction`` part, the clock ping, and the close on time without a sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from checkout.models import Auction, SavedCard
from checkout.services import auction_start
from live.games import auctions as game
from shows import services as show_services

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def timers():
    """This process's close timers are stopped after the test."""
    yield game
    await game.shutdown()


def with_card(user):
    SavedCard.objects.create(
        user=user,
        customer_id=f"cus_fake_{user.pk}",
        payment_method_id=f"pm_fake_{user.pk}",
        brand="visa",
        last4="4242",
    )
    return user


@pytest.fixture
def staff(brand, host, moderator, make_user):
    owner = make_user("Olive Owner")
    show_services.membership_set(brand=brand, user=owner, role="owner")
    return {"owner": owner, "host": host, "moderator": moderator}


def started(show, host, products, **kw):
    fields = {"start_minor": 1000, "duration_seconds": 60, "increments": [[0, 100]]}
    fields.update(kw)
    return auction_start(show=show, user=host, product_id=products[1].pk, **fields)


async def test_a_clock_ping_is_answered_with_the_server_clock(
    connect, live_show, timers
):
    socket = await connect(live_show)
    before = timezone.now().timestamp() * 1000
    await socket.send("clock.ping", t=1234.5)
    pong = await socket.wait_for("clock.pong")
    assert pong["t"] == 1234.5
    assert before - 50 <= pong["server_now"] <= timezone.now().timestamp() * 1000 + 50
    ref = await socket.send("clock.ping", t="soon")
    assert (await socket.reply(ref))["code"] == "invalid"


async def test_clock_pings_past_the_limit_are_dropped(connect, live_show, timers):
    socket = await connect(live_show)
    for n in range(12):
        await socket.send("clock.ping", t=n)
    await socket.wait_for("clock.pong", t=4)
    with pytest.raises(AssertionError):
        await socket.wait_for("clock.pong", t=11, timeout=0.5)
    assert 5 <= len(socket.of_type("clock.pong")) < 12


@pytest.mark.parametrize("who", ["owner", "host", "moderator"])
async def test_owners_hosts_and_moderators_may_start_and_cancel(
    connect, live_show, products, staff, who, timers
):
    socket = await connect(live_show, staff[who])
    ref = await socket.send(
        "auction.start",
        product_id=products[1].pk,
        start_minor=2500,
        duration_seconds=120,
        buy_now_minor=9000,
        close="sudden_death",
    )
    assert (await socket.reply(ref))["type"] == "ack"
    event = await socket.wait_for("auction.started")
    card = event["auction"]
    assert card["status"] == "running"
    assert (card["start_minor"], card["next_minor"]) == (2500, 2500)
    assert card["next"]["en"] == "€25.00"
    assert card["close"] == "sudden_death"
    assert card["product"]["name"] == "Desk Mic"
    assert card["ends_at"] - card["started_at"] == 120_000
    assert event["server_now"] >= card["started_at"]
    ref = await socket.send("auction.cancel", auction_id=card["id"])
    assert (await socket.reply(ref))["type"] == "ack"
    closed = await socket.wait_for("auction.closed")
    assert closed["outcome"] == "cancelled"


@pytest.mark.parametrize("who", ["viewer", "anonymous"])
async def test_viewers_may_neither_start_nor_cancel(
    connect, live_show, products, host, make_user, who, timers
):
    user = None if who == "anonymous" else await database_sync_to_async(make_user)()
    auction = await database_sync_to_async(started)(live_show, host, products)
    socket = await connect(live_show, user)
    ref = await socket.send(
        "auction.start",
        product_id=products[0].pk,
        start_minor=100,
        duration_seconds=60,
    )
    assert (await socket.reply(ref))["code"] == "forbidden"
    ref = await socket.send("auction.cancel", auction_id=auction.pk)
    assert (await socket.reply(ref))["code"] == "forbidden"
    assert await database_sync_to_async(
        lambda: Auction.objects.get(pk=auction.pk).status
    )() == ("running")


async def test_a_start_with_bad_fields_is_refused_before_any_service(
    connect, live_show, products, host, timers
):
    socket = await connect(live_show, host)
    ref = await socket.send(
        "auction.start",
        product_id=products[1].pk,
        start_minor=100,
        duration_seconds=5,
    )
    assert (await socket.reply(ref))["code"] == "invalid"
    ref = await socket.send(
        "auction.start",
        product_id=products[1].pk,
        start_minor=100,
        duration_seconds=60,
        increments=[[0, "1"]],
    )
    assert (await socket.reply(ref))["code"] == "invalid"
    assert not await database_sync_to_async(Auction.objects.exists)()


async def test_bids_are_acknowledged_and_seen_by_the_room(
    connect, live_show, products, host, make_user, timers
):
    auction = await database_sync_to_async(started)(live_show, host, products)
    ann = await database_sync_to_async(lambda: with_card(make_user("Ann")))()
    watcher = await connect(live_show)
    socket = await connect(live_show, ann)
    ref = await socket.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await socket.reply(ref))["type"] == "ack"
    seen = await watcher.wait_for("auction.bid")
    assert seen["bid"]["bidder"] == "Ann"
    assert (seen["current_minor"], seen["next_minor"], seen["bids"]) == (1000, 1100, 1)
    assert seen["leader"] == "Ann"
    assert seen["extended"] is False
    assert seen["seq"] > watcher.events[0]["seq"]
    ref = await socket.send("auction.bid", auction_id=auction.pk, amount_minor=1100)
    assert (await socket.reply(ref))["code"] == "already_leading"
    ref = await socket.send("auction.bid", auction_id=auction.pk, max_minor=5000)
    assert (await socket.reply(ref))["type"] == "ack"
    held = await socket.wait_for("auction.max")
    assert held["max_minor"] == 5000
    ref = await socket.send("auction.bid", auction_id=auction.pk, amount_minor=1)
    refused = await socket.reply(ref)
    assert refused["code"] == "bid_too_low"
    assert "€11.00" in refused["message"]
    ref = await socket.send("auction.bid", auction_id=auction.pk)
    assert (await socket.reply(ref))["code"] == "invalid"


async def test_a_bid_below_the_next_amount_the_room_has_heard_is_refused_at_once(
    connect, live_show, products, host, make_user, timers
):
    """Once this process's room has heard ``auction.bid`` (next €11.00), a
    tap below it is refused ``bid_too_low`` in the viewer's language without
    reaching the database (no refusal is audited for it); once the auction
    closed, the server answers again (``auction_closed``)."""
    from shows.models import RoomAudit

    auction = await database_sync_to_async(started)(live_show, host, products)
    ann = await database_sync_to_async(lambda: with_card(make_user("Ann")))()
    bob = await database_sync_to_async(lambda: with_card(make_user("Bob")))()
    first = await connect(live_show, ann)
    second = await connect(live_show, bob)
    ref = await first.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await first.reply(ref))["type"] == "ack"
    await second.wait_for("auction.bid")
    assert game._floors[auction.pk][0] == 1100
    ref = await second.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    refused = await second.reply(ref)
    assert refused["code"] == "bid_too_low"
    assert "€11.00" in refused["message"]
    audited = await database_sync_to_async(
        lambda: RoomAudit.objects.filter(action="auction.bid").count()
    )()
    assert audited == 0
    ref = await second.send("auction.bid", auction_id=auction.pk, amount_minor=1100)
    assert (await second.reply(ref))["type"] == "ack"

    cancel = await connect(live_show, host)
    ref = await cancel.send("auction.cancel", auction_id=auction.pk)
    assert (await cancel.reply(ref))["type"] == "ack"
    await second.wait_for("auction.closed")
    assert auction.pk not in game._floors
    ref = await second.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await second.reply(ref))["code"] == "auction_closed"


async def test_a_bid_needs_an_account_and_a_saved_card(
    connect, live_show, products, host, make_user, timers
):
    auction = await database_sync_to_async(started)(live_show, host, products)
    anonymous = await connect(live_show)
    ref = await anonymous.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await anonymous.reply(ref))["code"] == "login_required"
    carless = await connect(live_show, await database_sync_to_async(make_user)())
    ref = await carless.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await carless.reply(ref))["code"] == "card_required"
    ref = await carless.send("auction.buy_now", auction_id=auction.pk)
    assert (await carless.reply(ref))["code"] == "card_required"


async def test_a_bid_after_the_end_is_refused_auction_closed(
    connect, live_show, products, host, make_user, timers
):
    auction = await database_sync_to_async(started)(live_show, host, products)
    await database_sync_to_async(
        lambda: Auction.objects.filter(pk=auction.pk).update(
            started_at=timezone.now() - timedelta(seconds=61),
            ends_at=timezone.now() - timedelta(seconds=1),
        )
    )()
    ann = await database_sync_to_async(lambda: with_card(make_user("Ann")))()
    socket = await connect(live_show, ann)
    ref = await socket.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await socket.reply(ref))["code"] == "auction_closed"


async def test_bidding_too_fast_is_refused_rate_limited(
    connect, live_show, products, host, make_user, timers
):
    auction = await database_sync_to_async(started)(live_show, host, products)
    ann = await database_sync_to_async(lambda: with_card(make_user("Ann")))()
    socket = await connect(live_show, ann)
    refs = [
        await socket.send("auction.bid", auction_id=auction.pk, amount_minor=10**6)
        for _ in range(game.BID_BURST * 4)
    ]
    codes = [(await socket.reply(ref)).get("code") for ref in refs]
    assert "rate_limited" in codes


async def test_the_snapshot_carries_the_auction_with_the_viewers_maximum(
    connect, live_show, products, host, make_user, timers
):
    auction = await database_sync_to_async(started)(live_show, host, products)
    ann = await database_sync_to_async(lambda: with_card(make_user("Ann")))()
    socket = await connect(live_show, ann)
    ref = await socket.send("auction.bid", auction_id=auction.pk, max_minor=3000)
    assert (await socket.reply(ref))["type"] == "ack"
    again = await connect(live_show, ann)
    card = again.events[0]["auction"]
    assert card["id"] == auction.pk
    assert (card["my_max_minor"], card["card_saved"]) == (3000, True)
    assert card["my_max"]["en"] == "€30.00"
    assert card["history"][0]["amount_minor"] == 1000
    other = await connect(live_show, await database_sync_to_async(make_user)())
    assert other.events[0]["auction"]["card_saved"] is False
    assert other.events[0]["auction"]["my_max_minor"] is None


async def test_a_show_without_an_auction_has_none_in_the_snapshot(
    connect, live_show, timers
):
    socket = await connect(live_show)
    assert socket.events[0]["auction"] is None


async def test_the_auction_closes_at_its_end_without_the_sweeper(
    connect, live_show, products, host, make_user, timers, stripe_settings
):
    """The room's process keeps a timer from the viewer's first clock ping;
    a late bid moves the end and the timer follows it."""
    auction = await database_sync_to_async(started)(
        live_show, host, products, extend_within_seconds=10, extend_by_seconds=6
    )
    await database_sync_to_async(
        lambda: Auction.objects.filter(pk=auction.pk).update(
            ends_at=timezone.now() + timedelta(seconds=4)
        )
    )()
    ann = await database_sync_to_async(lambda: with_card(make_user("Ann")))()
    socket = await connect(live_show, ann)
    await socket.send("clock.ping", t=1)
    ref = await socket.send("auction.bid", auction_id=auction.pk, amount_minor=1000)
    assert (await socket.reply(ref))["type"] == "ack"
    bid = await socket.wait_for("auction.bid")
    assert bid["extended"] is True
    closed = await socket.wait_for("auction.closed", timeout=15)
    assert closed["server_now"] >= bid["ends_at"]
    assert closed["server_now"] - bid["ends_at"] < 1000
    assert (closed["outcome"], closed["winner"], closed["amount_minor"]) == (
        "sold",
        "Ann",
        1000,
    )
    # The card was fake: the winner is asked to pay in the sheet.
    won = await socket.wait_for("auction.won", timeout=10)
    assert won["status"] == "pay_now"
    assert won["pay_by"] > closed["server_now"]
