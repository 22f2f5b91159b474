"""Who may send which host-only message: anonymous, viewer, moderator, host and a
host of another brand, against every host-only type."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from live.consumers import HOST_ONLY_TYPES
from shows.models import ChatMessage, Question, RoomAudit

pytestmark = [pytest.mark.django_db(transaction=True)]


def _payload(kind, *, product_id, question_id, message_id, user_id, merged_id, game):
    return {
        "question.answer": {"question_id": question_id, "text": "Yes"},
        "question.dismiss": {"question_id": question_id},
        "question.split": {"question_id": merged_id},
        "product.pin": {"product_id": product_id},
        "product.unpin": {"product_id": product_id},
        "chat.delete": {"message_id": message_id},
        "user.restrict": {"user_id": user_id, "kind": "timeout", "seconds": 60},
        "show.slow_mode": {"seconds": 5},
        # The live games (docs/games.md).
        "auction.start": {
            "product_id": product_id,
            "start_minor": 1000,
            "duration_seconds": 60,
        },
        "auction.cancel": {"auction_id": game},
        "giveaway.start": {"prize": "A mug", "duration_seconds": 60},
        "giveaway.draw": {"giveaway_id": game},
        "giveaway.redraw": {"giveaway_id": game},
        "giveaway.cancel": {"giveaway_id": game},
        "poll.open": {"question": "Which colour?", "options": ["Red", "Blue"]},
        "poll.close": {"poll_id": game},
        "poll.show_results": {"poll_id": game},
        "claim.keyword": {"product_id": product_id, "keyword": "SOLD"},
    }[kind]


def _game_for(kind, *, show, host, players, product_id):
    """What a game action acts on, made by a host beforehand: a running
    auction, an open (or, to redraw, a drawn and unclaimed) giveaway, an open
    poll. None for the other types."""
    from datetime import timedelta

    from django.utils import timezone

    from checkout.services import auctions
    from shows.models import GiveawayDraw
    from shows.services import giveaways, polls

    if kind == "auction.cancel":
        return auctions.auction_start(
            show=show,
            user=host,
            product_id=product_id,
            start_minor=1000,
            duration_seconds=60,
        ).pk
    if kind.startswith("giveaway.") and kind != "giveaway.start":
        giveaway = giveaways.giveaway_start(
            show=show, user=host, prize="A mug", duration_seconds=60
        )
        if kind == "giveaway.redraw":
            for player in players:
                giveaways.giveaway_enter(
                    show=show, user=player, giveaway_id=giveaway.pk
                )
            giveaways.giveaway_draw(show=show, user=host, giveaway_id=giveaway.pk)
            GiveawayDraw.objects.filter(giveaway=giveaway).update(
                claim_by=timezone.now() - timedelta(seconds=1)
            )
        return giveaway.pk
    if kind in ("poll.close", "poll.show_results"):
        return polls.poll_open(
            show=show, actor=host, question="Which colour?", options=["Red", "Blue"]
        ).pk
    return None


def test_every_host_only_type_is_in_the_matrix():
    assert set(HOST_ONLY_TYPES) == {
        "question.answer",
        "question.dismiss",
        "question.split",
        "product.pin",
        "product.unpin",
        "chat.delete",
        "user.restrict",
        "show.slow_mode",
        "auction.start",
        "auction.cancel",
        "giveaway.start",
        "giveaway.draw",
        "giveaway.redraw",
        "giveaway.cancel",
        "poll.open",
        "poll.close",
        "poll.show_results",
        "claim.keyword",
    }


@pytest.fixture
def room_state(live_show, products, make_user):
    from shows.services import room

    author = make_user("Asker")
    message = ChatMessage.objects.create(show=live_show, author=author, text="hi")
    question = Question.objects.create(show=live_show, author=author, text="Size?")
    merged = Question.objects.create(
        show=live_show,
        author=author,
        text="Which size?",
        status="merged",
        merged_into=question,
    )
    # product.unpin needs something pinned: pin the second product directly.
    from django.utils import timezone

    from shows.models import Pin

    Pin.objects.create(show=live_show, product=products[1], pinned_at=timezone.now())
    del room
    return {
        "author": author,
        "message": message,
        "question": question,
        "merged": merged,
        "players": [author, make_user("Player")],
    }


@pytest.fixture
def actors(viewer, other_brand_host, moderator, host):
    return {
        "anonymous": None,
        "viewer": viewer,
        "other_brand_host": other_brand_host,
        "moderator": moderator,
        "host": host,
    }


@pytest.mark.parametrize("kind", HOST_ONLY_TYPES)
@pytest.mark.parametrize("who", ["anonymous", "viewer", "other_brand_host"])
async def test_host_only_messages_are_refused_to_everyone_else(
    actors, connect, live_show, products, room_state, kind, who, host
):
    user = actors[who]
    socket = await connect(live_show, user)
    pid = products[0].pk if kind in ("product.pin", "auction.start") else products[1].pk
    game = await database_sync_to_async(_game_for)(
        kind,
        show=live_show,
        host=host,
        players=room_state["players"],
        product_id=products[1].pk,
    )
    ref = await socket.send(
        kind,
        **_payload(
            kind,
            product_id=pid,
            question_id=room_state["question"].pk,
            message_id=room_state["message"].pk,
            user_id=room_state["author"].pk,
            merged_id=room_state["merged"].pk,
            game=game,
        ),
    )
    error = await socket.reply(ref)
    assert error["type"] == "error"
    assert error["code"] == "forbidden"
    assert error["message"]
    audit = await database_sync_to_async(
        lambda: RoomAudit.objects.filter(kind="refusal", action=kind).first()
    )()
    assert audit is not None
    assert audit.code == "forbidden"
    # Nothing changed.
    message = await database_sync_to_async(ChatMessage.objects.get)(
        pk=room_state["message"].pk
    )
    question = await database_sync_to_async(Question.objects.get)(
        pk=room_state["question"].pk
    )
    assert message.deleted_at is None
    assert question.status == "open"
    merged = await database_sync_to_async(Question.objects.get)(
        pk=room_state["merged"].pk
    )
    assert merged.status == "merged"


@pytest.mark.parametrize("kind", HOST_ONLY_TYPES)
@pytest.mark.parametrize("who", ["moderator", "host"])
async def test_hosts_and_moderators_may_send_host_only_messages(
    actors, connect, live_show, products, room_state, kind, who, host
):
    staff = actors[who]
    socket = await connect(live_show, staff)
    pid = products[0].pk if kind in ("product.pin", "auction.start") else products[1].pk
    game = await database_sync_to_async(_game_for)(
        kind,
        show=live_show,
        host=host,
        players=room_state["players"],
        product_id=products[1].pk,
    )
    ref = await socket.send(
        kind,
        **_payload(
            kind,
            product_id=pid,
            question_id=room_state["question"].pk,
            message_id=room_state["message"].pk,
            user_id=room_state["author"].pk,
            merged_id=room_state["merged"].pk,
            game=game,
        ),
    )
    reply = await socket.reply(ref)
    assert reply["type"] == "ack", reply
