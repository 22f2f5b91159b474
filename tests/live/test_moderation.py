"""Moderation, questions and pins over the socket."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from realtime import events
from shows.models import ChatMessage, Pin, Restriction, RoomAudit
from shows.services import moderation

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_deleted_message_disappears_for_everyone(
    connect, live_show, viewer, viewer2, moderator
):
    author = await connect(live_show, viewer)
    other = await connect(live_show, viewer2)
    mod = await connect(live_show, moderator)
    await author.send("chat.send", text="rude words")
    message = await mod.wait_for("chat.message")
    ref = await mod.send("chat.delete", message_id=message["id"])
    assert (await mod.reply(ref))["type"] == "ack"
    for socket in (author, other, mod):
        deleted = await socket.wait_for("chat.deleted")
        assert deleted["message_id"] == message["id"]
    again = await connect(live_show, viewer2)
    assert again.events[0]["chat"] == []


async def test_a_timed_out_user_cannot_chat_until_the_time_is_up(
    connect, live_show, viewer, moderator
):
    target = await connect(live_show, viewer)
    mod = await connect(live_show, moderator)
    ref = await mod.send("user.restrict", user_id=viewer.pk, kind="timeout", seconds=60)
    assert (await mod.reply(ref))["type"] == "ack"
    note = await target.wait_for("user.restricted")
    assert note["kind"] == "timeout"
    ref = await target.send("chat.send", text="let me talk")
    error = await target.reply(ref)
    assert error["code"] == "timed_out"
    assert 55 < error["retry_after"] <= 60


async def test_a_time_out_outside_10_seconds_to_24_hours_is_refused(
    connect, live_show, viewer, moderator
):
    mod = await connect(live_show, moderator)
    for seconds in (5, 24 * 3600 + 1):
        ref = await mod.send(
            "user.restrict", user_id=viewer.pk, kind="timeout", seconds=seconds
        )
        assert (await mod.reply(ref))["code"] == "invalid"
    assert not await database_sync_to_async(Restriction.objects.exists)()


async def test_a_ban_closes_the_users_sockets_and_refuses_reconnects(
    connect, live_show, viewer, viewer2, moderator
):
    banned = await connect(live_show, viewer)
    bystander = await connect(live_show, viewer2)
    mod = await connect(live_show, moderator)
    ref = await mod.send("user.restrict", user_id=viewer.pk, kind="ban")
    assert (await mod.reply(ref))["type"] == "ack"
    assert await banned.closed(timeout=2) == 4003
    assert banned.of_type("error")[-1]["code"] == "banned"
    again = await connect(live_show, viewer)
    assert again.events[0]["code"] == "banned"
    assert await again.closed() == 4003
    refused = await database_sync_to_async(
        RoomAudit.objects.filter(action="connect", code="banned").count
    )()
    assert refused == 1
    ref = await bystander.send("chat.send", text="still fine")
    assert (await bystander.reply(ref))["type"] == "ack"


async def test_staff_cannot_be_restricted(connect, live_show, host, moderator):
    mod = await connect(live_show, moderator)
    ref = await mod.send("user.restrict", user_id=host.pk, kind="ban")
    assert (await mod.reply(ref))["code"] == "invalid"


async def test_slow_mode_spaces_out_a_viewers_messages(
    connect, live_show, viewer, viewer2, host
):
    studio = await connect(live_show, host)
    chatty = await connect(live_show, viewer)
    ref = await studio.send("show.slow_mode", seconds=30)
    assert (await studio.reply(ref))["type"] == "ack"
    assert (await chatty.wait_for("show.slow_mode"))["seconds"] == 30
    assert (await chatty.reply(await chatty.send("chat.send", text="one")))[
        "type"
    ] == "ack"
    error = await chatty.reply(await chatty.send("chat.send", text="two"))
    assert error["code"] == "slow_mode"
    assert 25 < error["retry_after"] <= 30
    ref = await studio.send("show.slow_mode", seconds=121)
    assert (await studio.reply(ref))["code"] == "invalid"


async def test_a_message_with_a_blocked_word_is_shown_to_its_sender_only(
    connect, live_show, viewer, viewer2, brand
):
    await database_sync_to_async(moderation.blocked_words_set)(
        brand=brand, words=["Scam"]
    )
    sender = await connect(live_show, viewer)
    other = await connect(live_show, viewer2)
    ref = await sender.send("chat.send", text="this is a SCAM!")
    assert (await sender.reply(ref))["type"] == "ack"
    own = await sender.wait_for("chat.message")
    assert own["hidden"] is True
    await other.send("chat.send", text="a scampi recipe")
    seen = await other.wait_for("chat.message")
    assert seen["text"] == "a scampi recipe"
    assert not [e for e in other.events if e.get("text") == "this is a SCAM!"]
    audit = await database_sync_to_async(
        RoomAudit.objects.filter(code="blocked_word").count
    )()
    assert audit == 1
    assert (
        await database_sync_to_async(ChatMessage.objects.filter(hidden=True).count)()
        == 1
    )


async def test_questions_are_asked_voted_once_and_answered_for_everyone(
    connect, live_show, viewer, viewer2, host, products
):
    asker = await connect(live_show, viewer)
    voter = await connect(live_show, viewer2)
    studio = await connect(live_show, host)
    ref = await asker.send(
        "question.ask", text="Does it fold?", product_id=products[0].pk
    )
    assert (await asker.reply(ref))["type"] == "ack"
    asked = await voter.wait_for("question.asked")
    assert asked["product_id"] == products[0].pk
    ref = await voter.send("question.vote", question_id=asked["id"])
    assert (await voter.reply(ref))["type"] == "ack"
    assert (await studio.wait_for("question.voted"))["votes"] == 1
    again = await voter.reply(
        await voter.send("question.vote", question_id=asked["id"])
    )
    assert again["code"] == "already_voted"
    ref = await studio.send(
        "question.answer", question_id=asked["id"], text="Yes, flat."
    )
    assert (await studio.reply(ref))["type"] == "ack"
    answered = await asker.wait_for("question.answered")
    assert answered["question_id"] == asked["id"]
    assert answered["answer"] == "Yes, flat."
    fresh = await connect(live_show, viewer2)
    [question] = fresh.events[0]["questions"]
    assert question["status"] == "answered"
    assert fresh.events[0]["my_votes"] == [asked["id"]]


async def test_a_question_about_a_product_outside_the_lineup_is_refused(
    connect, live_show, viewer, other_brand_host
):
    socket = await connect(live_show, viewer)
    ref = await socket.send("question.ask", text="And this?", product_id=999999)
    assert (await socket.reply(ref))["code"] == "not_in_lineup"


async def test_at_most_three_products_are_pinned_and_the_pin_log_is_kept(
    connect, live_show, host, viewer, products, brand
):
    from shows import services

    extra = await database_sync_to_async(services.product_create)(
        brand=brand, name="Stand"
    )
    await database_sync_to_async(services.lineup_set)(
        show=live_show, products=[*products, extra]
    )
    studio = await connect(live_show, host)
    watcher = await connect(live_show, viewer)
    for product in products:
        ref = await studio.send("product.pin", product_id=product.pk)
        assert (await studio.reply(ref))["type"] == "ack"
    fourth = await studio.reply(await studio.send("product.pin", product_id=extra.pk))
    assert fourth["code"] == "too_many_pins"
    pinned = await watcher.wait_for("product.pinned")
    assert pinned["product"]["id"] == products[0].pk
    assert pinned["product"]["variants"][0]["price_minor"] == 14900
    assert pinned["at"] > 1_700_000_000_000
    ref = await studio.send("product.unpin", product_id=products[0].pk)
    assert (await studio.reply(ref))["type"] == "ack"
    unpinned = await watcher.wait_for("product.unpinned")
    assert unpinned["product_id"] == products[0].pk
    ref = await studio.send("product.pin", product_id=extra.pk)
    assert (await studio.reply(ref))["type"] == "ack"
    log = await database_sync_to_async(list)(Pin.objects.order_by("id"))
    assert len(log) == 4
    assert log[0].unpinned_at is not None
    assert log[0].unpinned_at >= log[0].pinned_at
    assert all(p.unpinned_at is None for p in log[1:])


async def test_stock_changes_reach_the_room_and_order_updates_only_the_buyer(
    connect, live_show, viewer, viewer2, products
):
    buyer = await connect(live_show, viewer)
    other = await connect(live_show, viewer2)
    variant = await database_sync_to_async(lambda: products[0].variants.first())()

    def emit():
        events.broadcast(
            live_show.pk,
            {
                "type": events.STOCK_CHANGED,
                "variant_id": variant.pk,
                "product_id": products[0].pk,
                "stock_available": 24,
            },
        )
        events.notify(
            live_show.pk,
            events.user_recipient(viewer.pk),
            {"type": events.ORDER_UPDATED, "order_id": 1, "status": "paid"},
        )

    await database_sync_to_async(emit)()
    for socket in (buyer, other):
        stock = await socket.wait_for("stock.changed")
        assert stock["stock_available"] == 24
    assert (await buyer.wait_for("order.updated"))["status"] == "paid"
    await asyncio.sleep(0.3)
    assert other.of_type("order.updated") == []
