"""Reconnecting with ``?since=``: exactly the missed events, or a fresh snapshot."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from shows.services import room
from tests.conftest import missing_service

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _chat(show, user, text):
    await database_sync_to_async(room.chat_send)(show=show, user=user, text=text)


async def test_resume_delivers_the_missed_events_without_gap_or_duplicate(
    connect, live_show, viewer, moderator
):
    first = await connect(live_show, viewer)
    seq = first.events[0]["seq"]
    await _chat(live_show, moderator, "one")
    await first.wait_for("chat.message", text="one")
    last = first.of_type("chat.message")[-1]["seq"]
    await first.comm.disconnect()
    for text in ("two", "three", "four"):
        await _chat(live_show, moderator, text)

    again = await connect(live_show, viewer, since=last)
    resumed = again.events[0]
    assert resumed["type"] == "resumed"
    assert resumed["since"] == last
    missed = [e for e in again.events if e["type"] == "chat.message"]
    assert [e["text"] for e in missed] == ["two", "three", "four"]
    assert [e["seq"] for e in missed] == [last + 1, last + 2, last + 3]
    assert resumed["seq"] == last + 3
    assert seq < last

    await _chat(live_show, moderator, "five")
    five = await again.wait_for("chat.message", text="five")
    assert five["seq"] == last + 4
    texts = [e["text"] for e in again.of_type("chat.message")]
    assert texts == ["two", "three", "four", "five"]
    assert not any(e["type"] == "snapshot" for e in again.events)


async def test_resume_when_nothing_was_missed_sends_nothing_but_resumed(
    connect, live_show, viewer
):
    first = await connect(live_show, viewer)
    seq = first.events[0]["seq"]
    again = await connect(live_show, viewer, since=seq)
    assert again.events == [{"type": "resumed", "since": seq, "seq": seq}]


async def test_a_seq_from_the_future_gets_a_fresh_snapshot(connect, live_show, viewer):
    socket = await connect(live_show, viewer, since=10**9)
    assert socket.events[0]["type"] == "snapshot"


async def test_a_gap_older_than_the_redis_log_is_filled_from_postgresql(
    connect, live_show, viewer, moderator, redis_client_if_any
):
    if redis_client_if_any is None:
        missing_service("Redis on 127.0.0.1:6379 (the trimmed log is checked there)")
    from realtime.bus import log_key
    from realtime.lifetime import acurrent

    first = await connect(live_show, viewer)
    seq = first.events[0]["seq"]
    for text in ("a", "b", "c"):
        await _chat(live_show, moderator, text)
    lifetime = await acurrent()
    redis_client_if_any.xtrim(
        log_key(live_show.pk, lifetime), maxlen=1, approximate=False
    )
    again = await connect(live_show, viewer, since=seq)
    assert again.events[0] == {"type": "resumed", "since": seq, "seq": seq + 3}
    assert [e["text"] for e in again.of_type("chat.message")] == ["a", "b", "c"]
    assert [e["seq"] for e in again.events[1:]] == [seq + 1, seq + 2, seq + 3]


async def test_a_gap_older_than_anything_kept_gets_a_fresh_snapshot(
    connect, live_show, viewer, moderator, redis_client_if_any
):
    from realtime.bus import log_key
    from realtime.lifetime import acurrent
    from realtime.models import OutboxEvent

    first = await connect(live_show, viewer)
    seq = first.events[0]["seq"]
    for text in ("a", "b", "c"):
        await _chat(live_show, moderator, text)
    if redis_client_if_any is not None:
        redis_client_if_any.delete(log_key(live_show.pk, await acurrent()))
    await database_sync_to_async(
        OutboxEvent.objects.filter(show_id=live_show.pk, seq=seq + 1).delete
    )()
    again = await connect(live_show, viewer, since=seq)
    snapshot = again.events[0]
    assert snapshot["type"] == "snapshot"
    assert [m["text"] for m in snapshot["chat"]] == ["a", "b", "c"]
    assert snapshot["seq"] == seq + 3


@override_settings(REDIS_URL="")
async def test_the_embedded_bus_without_redis_delivers_and_resumes(
    connect, live_show, viewer, viewer2, moderator
):
    watcher = await connect(live_show, viewer)
    sender = await connect(live_show, viewer2)
    ref = await sender.send("chat.send", text="no redis here")
    assert (await sender.reply(ref))["type"] == "ack"
    got = await watcher.wait_for("chat.message", text="no redis here")
    await watcher.comm.disconnect()
    await _chat(live_show, moderator, "while away")
    again = await connect(live_show, viewer, since=got["seq"])
    assert again.events[0]["type"] == "resumed"
    assert [e["text"] for e in again.of_type("chat.message")] == ["while away"]


async def test_a_database_created_afresh_is_not_taken_for_one_already_published(
    connect, live_show, viewer, moderator, redis_client_if_any
):
    """Redis still holds a higher last-published seq for this show from an
    earlier database (a new test run, a restored backup): the events of this
    database are published all the same, because the keys carry its lifetime."""
    if redis_client_if_any is None:
        missing_service("Redis on 127.0.0.1:6379 (the published seqs are kept there)")
    from realtime.bus import published_key

    redis_client_if_any.set(published_key(live_show.pk, "db-earlier"), 10**6)
    watcher = await connect(live_show, viewer)
    await _chat(live_show, moderator, "still heard")
    got = await watcher.wait_for("chat.message", text="still heard")
    assert got["seq"] > watcher.events[0]["seq"]
