"""Giveaways through the room's socket (live/games/giveaways.py): who may run
them, entering by button and by chat keyword, the coalesced entry count, the
per-process timer's draw and the winner's claim."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from checkout.models import Order
from live import consumers
from live.games import giveaways as live_giveaways
from shows.models import Giveaway, GiveawayDraw, GiveawayEntry

pytestmark = [pytest.mark.django_db(transaction=True)]

START = {
    "type": "giveaway.start",
    "prize": "A signed vinyl",
    "duration_seconds": 60,
}


async def start(socket, **rules):
    fields = {k: v for k, v in {**START, **rules}.items() if k != "type"}
    ref = await socket.send("giveaway.start", **fields)
    reply = await socket.reply(ref)
    assert reply["type"] == "ack", reply
    started = await socket.wait_for("giveaway.started")
    return started["giveaway"]


async def test_a_viewer_may_not_start_draw_or_cancel_a_giveaway(
    connect, live_show, host, viewer
):
    """The room refuses staff-only messages with the consumer's code for
    hosts' actions, and nothing is stored or sent."""
    socket = await connect(live_show, viewer)
    for kind in ("giveaway.start", "giveaway.draw", "giveaway.cancel"):
        ref = await socket.send(kind, giveaway_id=1, duration_seconds=60)
        reply = await socket.reply(ref)
        assert reply["type"] == "error"
        assert reply["code"] == "forbidden"
    assert not await database_sync_to_async(Giveaway.objects.exists)()
    assert socket.of_type("giveaway.started") == []


async def test_a_moderator_starts_one_and_the_room_sees_the_commitment(
    connect, live_show, moderator, viewer
):
    room = await connect(live_show, viewer)
    studio = await connect(live_show, moderator)
    card = await start(studio, eligibility="signed_in")
    seen = (await room.wait_for("giveaway.started"))["giveaway"]
    assert seen["id"] == card["id"]
    giveaway = await database_sync_to_async(Giveaway.objects.get)(pk=card["id"])
    assert seen["seed_hash"] == hashlib.sha256(bytes.fromhex(giveaway.seed)).hexdigest()
    assert seen["seed"] is None
    assert seen["server_now"] <= seen["closes_at"]


async def test_entering_by_button_tells_only_the_entrant_their_token(
    connect, live_show, host, viewer, viewer2
):
    studio = await connect(live_show, host)
    card = await start(studio)
    first = await connect(live_show, viewer)
    second = await connect(live_show, viewer2)
    assert first.events[0]["giveaway"]["my_token"] is None
    ref = await first.send("giveaway.enter", giveaway_id=card["id"])
    assert (await first.reply(ref))["type"] == "ack"
    entered = await first.wait_for("giveaway.entered")
    entry = await database_sync_to_async(GiveawayEntry.objects.get)(user=viewer)
    assert entered["token"] == entry.token
    counted = await second.wait_for("giveaway.entries", count=1)
    assert "seq" not in counted  # ephemeral
    assert second.of_type("giveaway.entered") == []
    consumers.ANONYMOUS_SNAPSHOTS.clear()
    again = await connect(live_show, viewer)
    assert again.events[0]["giveaway"]["my_token"] == entry.token
    anonymous = await connect(live_show)
    assert anonymous.events[0]["giveaway"]["my_token"] is None


async def test_the_keyword_in_the_chat_enters_and_a_refusal_reaches_the_author(
    connect, live_show, host, viewer, viewer2
):
    studio = await connect(live_show, host)
    card = await start(studio, entry="keyword", keyword="GIVE", eligibility="buyers")
    buyer = await connect(live_show, viewer)
    browser = await connect(live_show, viewer2)
    await database_sync_to_async(Order.objects.create)(
        show=live_show,
        buyer=viewer,
        status=Order.Status.PAID,
        total_minor=8900,
        currency="EUR",
        idempotency_key="giveaway-test:1",
    )
    ref = await buyer.send("chat.send", text="give!")
    assert (await buyer.reply(ref))["type"] == "ack"
    entered = await buyer.wait_for("giveaway.entered")
    assert entered["giveaway_id"] == card["id"]
    ref = await browser.send("chat.send", text="GIVE")
    assert (await browser.reply(ref))["type"] == "ack"  # the message went through
    refused = await browser.wait_for("giveaway.refused")
    assert refused["code"] == "not_eligible"
    assert "paid order" in refused["message"]
    assert buyer.of_type("giveaway.refused") == []
    ref = await browser.send("chat.send", text="I would give a lot for it")
    await browser.reply(ref)
    entrants = await database_sync_to_async(
        lambda: list(GiveawayEntry.objects.values_list("user", flat=True))
    )()
    assert entrants == [viewer.pk]


async def test_a_burst_of_entries_is_counted_at_most_once_a_second(
    connect, live_show, host, make_user
):
    studio = await connect(live_show, host)
    card = await start(studio)
    sockets = []
    for index in range(6):
        user = await database_sync_to_async(make_user)(f"Entrant {index}")
        sockets.append(await connect(live_show, user))
    refs = [await s.send("giveaway.enter", giveaway_id=card["id"]) for s in sockets]
    for socket, ref in zip(sockets, refs, strict=True):
        assert (await socket.reply(ref))["type"] == "ack"
    await studio.wait_for("giveaway.entries", count=6, timeout=5)
    counts = studio.of_type("giveaway.entries")
    assert len(counts) <= 3
    times = [event["server_now"] for event in counts]
    assert all(b - a >= 900 for a, b in itertools.pairwise(times))


async def test_the_timer_draws_at_closes_at_and_the_winner_claims(
    connect, live_show, host, viewer
):
    studio = await connect(live_show, host)
    card = await start(studio)
    room = await connect(live_show, viewer)
    ref = await room.send("giveaway.enter", giveaway_id=card["id"])
    assert (await room.reply(ref))["type"] == "ack"
    await database_sync_to_async(
        lambda: Giveaway.objects.filter(pk=card["id"]).update(
            closes_at=timezone.now() + timedelta(milliseconds=300)
        )
    )()
    live_giveaways.schedule(card["id"])
    drawn = await room.wait_for("giveaway.drawn", timeout=8)
    assert drawn["winner"] == "Vera Viewer"
    won = await room.wait_for("giveaway.won")
    assert won["giveaway_id"] == card["id"]
    assert won["claim_by"] > won["server_now"]
    ref = await studio.send("giveaway.claim", giveaway_id=card["id"])
    assert (await studio.reply(ref))["code"] == "not_the_winner"
    ref = await room.send("giveaway.claim", giveaway_id=card["id"])
    assert (await room.reply(ref))["type"] == "ack"
    claimed = await studio.wait_for("giveaway.claimed")
    assert claimed["winner"] == "Vera Viewer"
    draw = await database_sync_to_async(GiveawayDraw.objects.get)(giveaway=card["id"])
    assert draw.claimed_at is not None


async def test_the_host_draws_early_and_cancels_the_next_one(
    connect, live_show, host, viewer
):
    studio = await connect(live_show, host)
    room = await connect(live_show, viewer)
    card = await start(studio)
    ref = await studio.send("giveaway.draw", giveaway_id=card["id"])
    assert (await studio.reply(ref))["type"] == "ack"
    drawn = await room.wait_for("giveaway.drawn")
    assert drawn["winner"] is None
    ref = await room.send("giveaway.enter", giveaway_id=card["id"])
    assert (await room.reply(ref))["code"] == "giveaway_closed"
    second = await start(studio, prize="A tote bag")
    ref = await studio.send("giveaway.cancel", giveaway_id=second["id"])
    assert (await studio.reply(ref))["type"] == "ack"
    cancelled = await room.wait_for("giveaway.cancelled")
    assert cancelled["giveaway"]["status"] == "cancelled"


async def test_an_anonymous_viewer_is_asked_to_log_in_to_enter(
    connect, live_show, host
):
    studio = await connect(live_show, host)
    card = await start(studio)
    consumers.ANONYMOUS_SNAPSHOTS.clear()
    anonymous = await connect(live_show)
    assert anonymous.events[0]["giveaway"]["id"] == card["id"]
    ref = await anonymous.send("giveaway.enter", giveaway_id=card["id"])
    reply = await anonymous.reply(ref)
    assert reply["code"] == "login_required"
    assert not await database_sync_to_async(GiveawayEntry.objects.exists)()
