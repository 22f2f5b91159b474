"""Room services: rows, invariants, and broadcasts only after commit."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from shows import selectors
from shows.exceptions import (
    AlreadyVoted,
    Banned,
    InvalidInput,
    LoginRequired,
    NotAHost,
    NotInLineup,
    ShowEnded,
    TooManyPins,
)
from shows.models import ChatMessage, Pin, Question, RoomAudit
from shows.services import lifecycle, moderation, room

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """Every event handed to the bus (after commit), in order, without its seq."""
    from realtime import bus

    sent: list[tuple[str, int, object]] = []

    class Recorder:
        def publish_event(self, show_id, seq, payload, *, strict):
            event = json.loads(payload)
            assert event.pop("seq") == seq
            sent.append(("persisted", show_id, event))
            return bus.PUBLISHED

        def publish(self, show_id, data):
            sent.append(("raw", show_id, data))

        def control(self, command):
            sent.append(("control", 0, command))

    monkeypatch.setattr(bus, "get_bus", lambda: Recorder())
    return sent


def test_a_chat_message_is_stored_and_broadcast_after_commit(
    live_show, make_user, published, django_capture_on_commit_callbacks
):
    author = make_user("Ann")
    with django_capture_on_commit_callbacks(execute=True):
        message = room.chat_send(show=live_show, user=author, text="  hi there  ")
    assert message.text == "hi there"
    [(kind, show_id, event)] = published
    assert (kind, show_id) == ("persisted", live_show.pk)
    assert event["type"] == "chat.message"
    assert event["id"] == message.pk
    assert event["author"] == {"id": author.pk, "name": "Ann", "role": None}


def test_a_rolled_back_action_never_reaches_viewers(
    live_show, make_user, published, django_capture_on_commit_callbacks
):
    author = make_user()

    def roll_back():
        with transaction.atomic():
            room.chat_send(show=live_show, user=author, text="gone")
            raise RuntimeError("roll back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        roll_back()
    assert published == []
    assert not ChatMessage.objects.exists()


def test_chat_refusals_change_nothing(live_show, make_user, host):
    author = make_user()
    with pytest.raises(LoginRequired):
        room.chat_send(show=live_show, user=None, text="hi")
    with pytest.raises(InvalidInput):
        room.chat_send(show=live_show, user=author, text="x" * 501)
    with pytest.raises(InvalidInput):
        room.chat_send(show=live_show, user=author, text="   ")
    moderation.user_restrict(show=live_show, actor=host, user_id=author.pk, kind="ban")
    with pytest.raises(Banned):
        room.chat_send(show=live_show, user=author, text="hi")
    assert not ChatMessage.objects.exists()


def test_chat_in_an_ended_show_is_refused(live_show, make_user):
    lifecycle.show_end(show=live_show)
    with pytest.raises(ShowEnded):
        room.chat_send(show=live_show, user=make_user(), text="late")


def test_a_vote_counts_once_per_viewer(live_show, make_user):
    asker, voter = make_user(), make_user()
    question = room.question_ask(show=live_show, user=asker, text="Colours?")
    room.question_vote(show=live_show, user=voter, question_id=question.pk)
    with pytest.raises(AlreadyVoted):
        room.question_vote(show=live_show, user=voter, question_id=question.pk)
    question.refresh_from_db()
    assert question.votes == 1


def test_a_question_about_another_brands_product_is_refused(live_show, make_user):
    from shows import services

    other = services.brand_create(name="Else", slug="else")
    product = services.product_create(brand=other, name="Foreign")
    with pytest.raises(NotInLineup):
        room.question_ask(
            show=live_show, user=make_user(), text="This?", product_id=product.pk
        )
    assert not Question.objects.exists()


def test_pins_hold_at_most_three_and_keep_their_log(
    live_show, products, host, brand, published, django_capture_on_commit_callbacks
):
    from shows import services

    extra = services.product_create(brand=brand, name="Extra")
    services.lineup_set(show=live_show, products=[*products, extra])
    with django_capture_on_commit_callbacks(execute=True):
        for product in products:
            room.product_pin(show=live_show, actor=host, product_id=product.pk)
    with pytest.raises(TooManyPins):
        room.product_pin(show=live_show, actor=host, product_id=extra.pk)
    room.product_unpin(show=live_show, actor=host, product_id=products[1].pk)
    room.product_pin(show=live_show, actor=host, product_id=extra.pk)
    assert Pin.objects.filter(unpinned_at__isnull=True).count() == 3
    log = Pin.objects.get(product=products[1])
    assert log.unpinned_at is not None
    assert log.pinned_at <= log.unpinned_at
    pinned = [e for _, _, e in published if e["type"] == "product.pinned"]
    assert len(pinned) == 3
    assert all(isinstance(e["at"], int) for e in pinned)
    assert pinned[0]["product"]["variants"][0]["stock_available"] == 25


def test_staff_of_another_brand_may_not_pin(live_show, products, make_user):
    from shows import services

    other = services.brand_create(name="Else", slug="else")
    outsider = make_user()
    services.membership_set(brand=other, user=outsider, role="host")
    with pytest.raises(NotAHost):
        room.product_pin(show=live_show, actor=outsider, product_id=products[0].pk)
    assert not Pin.objects.exists()


def test_the_refusal_audit_keeps_who_what_and_why(live_show, make_user):
    user = make_user()
    moderation.refusal_audit(
        show=live_show, user=user, action="chat.send", code="rate_limited", detail="x"
    )
    audit = RoomAudit.objects.get()
    assert (audit.user, audit.kind, audit.action, audit.code) == (
        user,
        "refusal",
        "chat.send",
        "rate_limited",
    )


def test_the_snapshot_takes_a_fixed_number_of_queries(
    live_show, products, host, make_user, django_assert_num_queries
):
    viewer = make_user()
    for product in products[:2]:
        room.product_pin(show=live_show, actor=host, product_id=product.pk)
    for index in range(60):
        ChatMessage.objects.create(show=live_show, author=viewer, text=f"m{index}")
    for index in range(5):
        question = Question.objects.create(
            show=live_show, author=viewer, text=f"q{index}"
        )
        room.question_vote(show=live_show, user=host, question_id=question.pk)
    with django_assert_num_queries(8):
        snapshot = selectors.room_snapshot(
            show=live_show, user=viewer, seq=7, viewers=3
        )
    assert len(snapshot["chat"]) == 50
    assert snapshot["chat"][-1]["text"] == "m59"
    assert len(snapshot["pinned"]) == 2
    assert [q["votes"] for q in snapshot["questions"]] == [1] * 5
    assert snapshot["seq"] == 7
    assert snapshot["viewers"] == 3
