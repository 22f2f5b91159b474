"""The outbox: events written in the caller's transaction, gapless seqs per
show, published once each and in order, retried until Redis takes them."""

from __future__ import annotations

import json
import time

import pytest
from django.db import transaction

from realtime import bus as busmod
from realtime import events, outbox
from realtime import redis as rclient
from realtime.lifetime import current as current_lifetime
from realtime.models import OutboxEvent, RoomSequence


def _event(n: int) -> dict:
    return {"type": "chat.deleted", "message_id": n}


@pytest.mark.django_db
def test_an_event_takes_the_next_seq_in_the_callers_transaction():
    with transaction.atomic():
        assert events.broadcast(7, _event(1)) == 1
        assert events.broadcast(7, _event(2)) == 2
        assert events.broadcast(8, _event(3)) == 1  # per show
    rows = list(OutboxEvent.objects.order_by("id").values_list("show_id", "seq"))
    assert rows == [(7, 1), (7, 2), (8, 1)]
    assert json.loads(OutboxEvent.objects.get(show_id=7, seq=2).data[1:]) == {
        "seq": 2,
        **_event(2),
    }


@pytest.mark.django_db
def test_a_rolled_back_event_leaves_no_row_and_no_gap():
    with transaction.atomic():
        events.broadcast(7, _event(1))

    def roll_back() -> None:
        with transaction.atomic():
            events.broadcast(7, _event(2))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        roll_back()
    assert events.broadcast(7, _event(3)) == 2
    assert RoomSequence.objects.get(show_id=7).seq == 2
    assert list(OutboxEvent.objects.values_list("seq", flat=True).order_by("seq")) == [
        1,
        2,
    ]


@pytest.mark.django_db
def test_the_bus_publishes_each_seq_once_and_in_order(redis_client):
    bus = busmod.RedisBus()
    show = 900_001
    pubsub = redis_client.pubsub()
    pubsub.subscribe(busmod.room_channel(show))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"

    def publish(seq: int, *, strict: bool = False) -> int:
        return bus.publish_event(
            show, seq, busmod.with_seq(seq, _event(seq)), strict=strict
        )

    # Strict (right after commit) on an unknown show: only its first event.
    assert publish(5, strict=True) == busmod.EARLY
    assert publish(1, strict=True) == busmod.PUBLISHED
    assert publish(1) == busmod.REPEATED  # a second relay: a no-op
    assert publish(3) == busmod.EARLY  # 2 is still on its way
    assert publish(2) == busmod.PUBLISHED
    assert publish(3) == busmod.PUBLISHED
    received: list[int | None] = []
    deadline = time.monotonic() + 2
    while len(received) < 3 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            received.append(busmod.seq_of(message["data"].decode()[1:]))
    assert received == [1, 2, 3]
    pubsub.close()


@pytest.mark.slow
def test_an_event_committed_while_redis_is_down_goes_out_when_it_is_back(
    transactional_db, own_redis, settings
):
    """The committing thread cannot publish (Redis was killed); the event
    waits in the outbox, and the relay publishes it once Redis answers."""
    import redis

    settings.REDIS_URL = own_redis.url
    own_redis.kill()
    with transaction.atomic():
        seq = events.broadcast(11, _event(1))
    row = OutboxEvent.objects.get(show_id=11, seq=seq)
    assert row.published_at is None
    own_redis.start()
    client = redis.Redis.from_url(own_redis.url)
    lifetime = current_lifetime()
    # This process's relay thread may be the one to publish it (perhaps before
    # a subscription could be made); a relay of the test's own sweeps too, so
    # the test does not wait for the thread. Redis's log shows it went out.
    relay = outbox.Relay()
    logged: list = []
    deadline = time.monotonic() + 10
    while not logged and time.monotonic() < deadline:
        if not rclient.is_down():
            relay.run_once()
        logged = client.xrange(busmod.log_key(11, lifetime)) or []
        time.sleep(0.1)
    assert [int(entry_id.split(b"-")[0]) for entry_id, _ in logged] == [seq]
    assert int(client.get(busmod.published_key(11, lifetime))) == seq
    while row.published_at is None and time.monotonic() < deadline:
        relay.run_once()
        row.refresh_from_db()
    assert row.published_at is not None
    relay.run_once()  # a second sweep publishes nothing again
    assert len(client.xrange(busmod.log_key(11, lifetime))) == 1
    client.close()


@pytest.mark.django_db
def test_a_batch_stores_its_events_together_in_order_and_publishes_them_after_commit(
    monkeypatch, django_capture_on_commit_callbacks, django_assert_num_queries
):
    """Two shows' events and a private one, appended in a batch: each show's
    seqs follow on from what it had, in the order appended; the block's end
    costs one seq statement per show and one INSERT; after commit they are
    published in the order appended."""
    published: list[outbox.Pending] = []
    monkeypatch.setattr(outbox, "publish_now", published.append)
    with transaction.atomic():
        events.broadcast(7, _event(0))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with django_assert_num_queries(3), events.batched():
            assert events.broadcast(7, _event(1)) == 0
            events.broadcast(8, _event(2))
            events.notify(7, "user:5", _event(3))
            events.broadcast(7, _event(4))
        assert published == []
    rows = list(
        OutboxEvent.objects.order_by("id").values_list("show_id", "seq", "data")
    )
    assert [(show, seq) for show, seq, _data in rows] == [
        (7, 1),
        (7, 2),
        (8, 1),
        (7, None),
        (7, 3),
    ]
    assert json.loads(rows[4][2][1:]) == {"seq": 3, **_event(4)}
    assert rows[3][2] == busmod.private_frame("user:5", _event(3))
    assert [(p.show_id, p.seq) for p in published] == [
        (7, 2),
        (8, 1),
        (7, None),
        (7, 3),
    ]
    assert [p.id for p in published] == _ids()[1:]


def _ids() -> list[int]:
    return list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))


@pytest.mark.django_db
def test_a_nested_batch_joins_the_open_one_and_an_exception_stores_nothing(
    django_capture_on_commit_callbacks,
):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        transaction.atomic(),
        events.batched() as batch,
    ):
        events.broadcast(7, _event(1))
        with events.batched() as inner:
            assert inner is batch
            events.broadcast(7, _event(2))
        assert OutboxEvent.objects.count() == 0  # nothing stored before the end
    assert len(callbacks) == 1
    stored = [
        json.loads(d[1:]) for d in OutboxEvent.objects.values_list("data", flat=True)
    ]
    assert [(e["seq"], e["message_id"]) for e in stored] == [(1, 1), (2, 2)]

    def refused() -> None:
        with transaction.atomic(), events.batched():
            events.broadcast(7, _event(5))
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        refused()
    assert OutboxEvent.objects.count() == 2
    assert RoomSequence.objects.get(show_id=7).seq == 2
    # After the block, appends are stored at once again.
    with transaction.atomic():
        assert events.broadcast(7, _event(6)) == 3


def test_a_batch_needs_a_transaction(transactional_db):
    with pytest.raises(RuntimeError), events.batched():
        pass
