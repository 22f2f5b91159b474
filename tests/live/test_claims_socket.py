"""Comment to buy through the room's socket: a keyword typed in the chat
claims, the claimer is told the outcome, the room sees the claim, only the
brand's staff set keywords."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from checkout.models import Order, StockHold
from live import consumers
from live.games import claims as claim_game
from shows.models import User, Variant
from shows.services import room
from shows.services.claim_keywords import claim_keyword_set

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_keywords():
    claim_game._keywords.clear()
    consumers.ANONYMOUS_SNAPSHOTS.clear()


@pytest.fixture
def mic_sold(live_show, products, host):
    """ "Desk Mic" (10 in stock, €89.00) pinned, claimed with SOLD."""
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    claim_keyword_set(
        show=live_show, actor=host, product_id=products[1].pk, keyword="SOLD"
    )
    return products[1]


async def test_a_viewer_typing_the_keyword_is_held_one_and_the_room_sees_the_claim(
    connect, live_show, mic_sold, viewer, viewer2, stripe_settings
):
    claimer = await connect(live_show, viewer)
    other = await connect(live_show, viewer2)
    assert claimer.events[0]["claim"]["keywords"] == [
        {"product_id": mic_sold.pk, "keyword": "SOLD"}
    ]
    ref = await claimer.send("chat.send", text="sold")
    assert (await claimer.reply(ref))["type"] == "ack"
    held = await claimer.wait_for("claim.held")
    order = await database_sync_to_async(Order.objects.get)()
    assert held["order_id"] == str(order.public_id)
    assert held["amount"]["en"] == "€89.00"
    assert held["product"]["name"] == "Desk Mic"
    made = await other.wait_for("claim.made")
    assert (made["name"], made["product"]) == ("Vera Viewer", "Desk Mic")
    assert made["seq"] > other.events[0]["seq"]
    await other.wait_for("chat.message", text="sold")
    assert other.of_type("claim.held") == []
    assert claimer.of_type("claim.refused") == []


async def test_the_claimers_snapshot_carries_their_held_claim(
    connect, live_show, mic_sold, viewer, stripe_settings
):
    first = await connect(live_show, viewer)
    await first.send("chat.send", text="SOLD")
    held = await first.wait_for("claim.held")
    again = await connect(live_show, viewer)
    (mine,) = again.events[0]["claim"]["mine"]
    assert mine["order_id"] == held["order_id"]
    assert mine["expires_at"] == held["expires_at"]


async def test_a_keyword_for_a_product_not_pinned_is_plain_chat_and_refused(
    connect, live_show, products, host, viewer
):
    await database_sync_to_async(claim_keyword_set)(
        show=live_show, actor=host, product_id=products[1].pk, keyword="SOLD"
    )
    socket = await connect(live_show, viewer)
    await socket.send("chat.send", text="SOLD")
    await socket.wait_for("chat.message", text="SOLD")
    refused = await socket.wait_for("claim.refused")
    assert refused["code"] == "not_pinned"
    assert refused["product_id"] == products[1].pk
    assert not await database_sync_to_async(Order.objects.exists)()


async def test_a_message_without_the_keyword_claims_nothing(
    connect, live_show, mic_sold, viewer
):
    socket = await connect(live_show, viewer)
    ref = await socket.send("chat.send", text="is it sold out?")
    await socket.reply(ref)
    await socket.wait_for("chat.message")
    await asyncio.sleep(0.3)
    assert socket.of_type("claim.refused") == []
    assert socket.of_type("claim.held") == []
    assert not await database_sync_to_async(Order.objects.exists)()


async def test_the_brands_staff_typing_the_keyword_claim_nothing(
    connect, live_show, mic_sold, host
):
    socket = await connect(live_show, host)
    ref = await socket.send("chat.send", text="SOLD")
    assert (await socket.reply(ref))["type"] == "ack"
    await socket.wait_for("chat.message", text="SOLD")
    await asyncio.sleep(0.3)
    assert socket.of_type("claim.refused") == []
    assert not await database_sync_to_async(Order.objects.exists)()


async def test_sold_sold_makes_one_hold_and_tells_the_second_which(
    connect, live_show, mic_sold, viewer, stripe_settings
):
    socket = await connect(live_show, viewer)
    await socket.send("chat.send", text="SOLD")
    await socket.send("chat.send", text="SOLD")
    held = await socket.wait_for("claim.held")
    refused = await socket.wait_for("claim.refused")
    assert refused["code"] == "already_claimed"
    assert refused["order_id"] == held["order_id"]
    assert await database_sync_to_async(Order.objects.count)() == 1


async def test_a_flood_of_keywords_is_limited_as_chat_and_holds_one(
    connect, live_show, mic_sold, viewer, stripe_settings
):
    """Ten "SOLD" at once from one viewer: the chat's own rate limit refuses
    those past its burst (they claim nothing), the first holds one, the other
    claims that went through are told they hold one already."""
    socket = await connect(live_show, viewer)
    refs = [await socket.send("chat.send", text="SOLD") for _ in range(10)]
    replies = [await socket.reply(ref) for ref in refs]
    limited = [r for r in replies if r["type"] == "error"]
    assert limited
    assert {r["code"] for r in limited} == {"rate_limited"}
    passed = len(replies) - len(limited)
    await socket.wait_for("claim.held")
    for _ in range(passed - 1):
        refused = await socket.wait_for("claim.refused")
        assert refused["code"] == "already_claimed"
    assert await database_sync_to_async(Order.objects.count)() == 1


async def test_only_the_brands_staff_set_keywords(
    connect, live_show, products, host, moderator, viewer
):
    """A viewer is refused (``forbidden``, as for every host-only message);
    a host and a moderator set and clear it, and the room hears each."""
    watcher = await connect(live_show, viewer)
    ref = await watcher.send("claim.keyword", product_id=products[1].pk, keyword="X")
    refused = await watcher.reply(ref)
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    for staff, keyword in ((host, "SOLD"), (moderator, "")):
        socket = await connect(live_show, staff)
        ref = await socket.send(
            "claim.keyword", product_id=products[1].pk, keyword=keyword
        )
        assert (await socket.reply(ref))["type"] == "ack"
        event = await watcher.wait_for("claim.keyword", keyword=keyword)
        assert event["product_id"] == products[1].pk
    socket = await connect(live_show, host)
    ref = await socket.send("claim.keyword", product_id=products[1].pk, keyword="a b")
    assert (await socket.reply(ref))["code"] == "keyword_invalid"


async def test_a_keyword_set_on_this_process_claims_at_once(
    connect, live_show, products, host, viewer, stripe_settings
):
    """The process that sets a keyword forgets its copy of the show's words."""
    await database_sync_to_async(room.product_pin)(
        show=live_show, actor=host, product_id=products[1].pk
    )
    studio = await connect(live_show, host)
    socket = await connect(live_show, viewer)
    await socket.reply(await socket.send("chat.send", text="+1"))
    ref = await studio.send("claim.keyword", product_id=products[1].pk, keyword="+1")
    await studio.reply(ref)
    await socket.send("chat.send", text="+1")
    await socket.wait_for("claim.held")


@pytest.mark.slow
async def test_200_keyword_claims_through_sockets_for_5_units_make_5_holds(
    connect, live_show, mic_sold, stripe_settings, settings
):
    """200 signed-in viewers, each on a socket, type the keyword at once:
    5 are told ``claim.held`` and 195 ``claim.refused`` ``sold_out``; exactly
    5 holds, no unit oversold."""
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0

    def make_claimers() -> list[User]:
        Variant.objects.filter(product=mic_sold).update(stock_available=5)
        return User.objects.bulk_create(
            User(
                username=f"claimer{n}@example.test",
                email=f"claimer{n}@example.test",
                display_name=f"Claimer {n}",
            )
            for n in range(200)
        )

    users = await database_sync_to_async(make_claimers)()
    sockets = []
    for start in range(0, len(users), 20):
        sockets += await asyncio.gather(
            *(connect(live_show, user) for user in users[start : start + 20])
        )
    assert all(s.events and s.events[0]["type"] == "snapshot" for s in sockets)
    await asyncio.gather(*(s.send("chat.send", text="Sold") for s in sockets))

    async def outcome(socket) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            for event in socket.events:
                if event.get("type") == "claim.held":
                    return "held"
                if event.get("type") == "claim.refused":
                    return event["code"]
            try:
                await socket.read(timeout=deadline - loop.time())
            except TimeoutError:
                break
        return "untold"

    outcomes = await asyncio.gather(*(outcome(s) for s in sockets))
    assert outcomes.count("held") == 5, outcomes
    assert outcomes.count("sold_out") == 195, outcomes

    def holds() -> tuple[int, int]:
        held = StockHold.objects.filter(status="held", variant__product=mic_sold)
        return held.count(), Variant.objects.get(product=mic_sold).stock_available

    assert await database_sync_to_async(holds)() == (5, 0)
