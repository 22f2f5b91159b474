"""The show room socket: connect, snapshot, chat, refusals, limits."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from shows.models import ChatMessage, RoomAudit

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_connect_sends_a_snapshot_with_pins_prices_and_stock(
    connect, live_show, viewer, pinned, products
):
    socket = await connect(live_show, viewer)
    snapshot = socket.events[0]
    assert snapshot["type"] == "snapshot"
    assert snapshot["show"]["status"] == "live"
    [card] = snapshot["pinned"]
    assert card["id"] == products[0].pk
    assert card["variants"][0]["price_minor"] == 14900
    assert card["variants"][0]["currency"] == "EUR"
    assert card["variants"][0]["stock_available"] == 25
    assert card["at"] > 0
    assert snapshot["chat"] == []
    assert snapshot["me"]["id"] == viewer.pk
    assert snapshot["seq"] >= 1


async def test_a_socket_from_a_foreign_origin_is_refused(connect, live_show, viewer):
    socket = await connect(live_show, viewer, origin=b"http://evil.example")
    assert socket.close_code is not None
    assert socket.events == []


async def test_an_unknown_show_is_accepted_then_closed_with_4404(connect, live_show):
    """Accepted first, so a browser sees 4404 (a refused handshake is an HTTP
    403 it cannot tell from a network failure)."""
    live_show.slug = "no-such-show"
    socket = await connect(live_show, initial=False)
    assert socket.close_code is None  # the handshake was accepted
    assert await socket.closed() == 4404


async def test_a_show_deleted_while_connecting_closes_the_socket(
    connect, live_show, viewer, monkeypatch
):
    """A show that disappears between the access check and the snapshot closes
    the socket with 4404 instead of failing inside the consumer."""
    from shows import selectors
    from shows.models import Show

    def gone(**kwargs):
        raise Show.DoesNotExist

    monkeypatch.setattr(selectors, "room_snapshot", gone)
    socket = await connect(live_show, viewer, initial=False)
    assert await socket.closed() == 4404


async def test_a_crowd_of_anonymous_viewers_shares_one_snapshot_build(
    connect, live_show, monkeypatch
):
    """Anonymous viewers connecting together wait for the one snapshot build of
    this process instead of each starting their own while it runs."""
    from live import consumers
    from shows import selectors

    consumers.ANONYMOUS_SNAPSHOTS.clear()
    real = selectors.room_snapshot
    builds = []

    def counted(**kwargs):
        builds.append(kwargs["seq"])
        return real(**kwargs)

    monkeypatch.setattr(selectors, "room_snapshot", counted)
    sockets = await asyncio.gather(*(connect(live_show) for _ in range(12)))
    snapshots = [socket.events[0] for socket in sockets]
    assert len(builds) == 1
    assert all(s["type"] == "snapshot" and s == snapshots[0] for s in snapshots)


async def test_a_failed_anonymous_snapshot_build_is_not_kept(
    connect, live_show, monkeypatch
):
    """A build that fails closes the sockets waiting for it; the next anonymous
    viewer gets a fresh build, not the failure."""
    from live import consumers
    from shows import selectors
    from shows.models import Show

    consumers.ANONYMOUS_SNAPSHOTS.clear()
    real = selectors.room_snapshot

    def gone(**kwargs):
        raise Show.DoesNotExist

    monkeypatch.setattr(selectors, "room_snapshot", gone)
    refused = await connect(live_show, initial=False)
    assert await refused.closed() == 4404
    monkeypatch.setattr(selectors, "room_snapshot", real)
    socket = await connect(live_show)
    assert socket.events[0]["type"] == "snapshot"
    assert socket.events[0]["show"]["status"] == "live"


async def test_chat_reaches_the_other_viewers(connect, live_show, viewer, viewer2):
    sender = await connect(live_show, viewer)
    other = await connect(live_show, viewer2)
    ref = await sender.send("chat.send", text="hello room")
    assert (await sender.reply(ref))["type"] == "ack"
    message = await other.wait_for("chat.message")
    assert message["text"] == "hello room"
    assert message["author"]["name"] == "Vera Viewer"
    assert message["seq"] > other.events[0]["seq"]
    own = await sender.wait_for("chat.message")
    assert own["id"] == message["id"]


async def test_anonymous_viewers_watch_but_cannot_chat(connect, live_show, viewer):
    anonymous = await connect(live_show)
    assert anonymous.events[0]["me"] is None
    ref = await anonymous.send("chat.send", text="hi")
    error = await anonymous.reply(ref)
    assert error["code"] == "login_required"
    assert error["message"]
    assert not await database_sync_to_async(ChatMessage.objects.exists)()


async def test_a_long_message_is_refused_with_the_ref_and_audited(
    connect, live_show, viewer
):
    socket = await connect(live_show, viewer)
    ref = await socket.send("chat.send", text="x" * 501)
    error = await socket.reply(ref)
    assert error["type"] == "error"
    assert error["code"] == "too_long"
    assert "500" in error["message"]
    audits = await database_sync_to_async(list)(
        RoomAudit.objects.filter(kind="refusal", code="too_long")
    )
    assert len(audits) == 1
    assert audits[0].user_id == viewer.pk
    assert not await database_sync_to_async(ChatMessage.objects.exists)()


async def test_a_frame_over_16_kib_closes_the_socket_with_4413(
    connect, live_show, viewer
):
    socket = await connect(live_show, viewer)
    await socket.comm.send_to(
        text_data='{"type":"chat.send","text":"' + "a" * 17000 + '"}'
    )
    assert await socket.closed() == 4413


async def test_malformed_frames_get_errors_and_a_flood_of_them_closes(
    connect, live_show, viewer
):
    socket = await connect(live_show, viewer)
    await socket.comm.send_to(text_data="not json")
    error = await socket.wait_for("error")
    assert error["code"] == "malformed"
    await socket.comm.send_json_to({"type": "no.such", "ref": 7})
    assert (await socket.reply(7))["code"] == "unknown_type"
    await socket.comm.send_json_to({"type": "chat.send", "text": 5, "ref": 8})
    assert (await socket.reply(8))["code"] == "invalid"
    for _ in range(12):
        await socket.comm.send_to(text_data="[1,2")
    assert await socket.closed() == 4400


async def test_chat_from_two_sockets_is_handled_in_parallel_on_postgresql(
    postgres, connect, live_show, viewer, viewer2, monkeypatch
):
    """Two users' messages are inside the service at the same time (each waits
    for the other at a barrier), so one slow commit does not hold the other."""
    import threading

    from shows.services import room

    real = room.chat_send
    both_inside = threading.Barrier(2, timeout=5)

    def meeting(**kwargs):
        both_inside.wait()
        return real(**kwargs)

    monkeypatch.setattr(room, "chat_send", meeting)
    first = await connect(live_show, viewer)
    second = await connect(live_show, viewer2)
    refs = [
        await first.send("chat.send", text="from the first"),
        await second.send("chat.send", text="from the second"),
    ]
    replies = [await first.reply(refs[0]), await second.reply(refs[1])]
    assert [r["type"] for r in replies] == ["ack", "ack"]
    await first.wait_for("chat.message", text="from the second")
    await second.wait_for("chat.message", text="from the first")


async def test_connect_checks_of_two_sockets_run_in_parallel_on_postgresql(
    postgres, connect, live_show, viewer, monkeypatch
):
    """Two sockets' connect checks are in the database at the same time (each
    waits for the other at a barrier), so a slow query does not queue a crowd."""
    import threading

    from shows import selectors

    real = selectors.room_access
    both_inside = threading.Barrier(2, timeout=5)

    def meeting(**kwargs):
        both_inside.wait()
        return real(**kwargs)

    monkeypatch.setattr(selectors, "room_access", meeting)
    sockets = await asyncio.gather(connect(live_show), connect(live_show, viewer))
    assert [socket.events[0]["type"] for socket in sockets] == ["snapshot"] * 2


async def test_a_flood_from_one_user_is_limited_and_others_are_unaffected(
    connect, live_show, viewer, viewer2
):
    flooder = await connect(live_show, viewer)
    calm = await connect(live_show, viewer2)
    refs = [await flooder.send("chat.send", text=f"spam {i}") for i in range(12)]
    replies = [await flooder.reply(ref) for ref in refs]
    acks = [r for r in replies if r["type"] == "ack"]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    assert len(acks) == 5  # the bucket's burst
    assert len(limited) == 7
    assert all(0 < r["retry_after"] <= 1.0 for r in limited)
    ref = await calm.send("chat.send", text="still here")
    assert (await calm.reply(ref))["type"] == "ack"
    await flooder.wait_for("chat.message", text="still here")


async def test_moderators_are_exempt_from_the_rate_limit(connect, live_show, moderator):
    socket = await connect(live_show, moderator)
    refs = [await socket.send("chat.send", text=f"note {i}") for i in range(12)]
    replies = [await socket.reply(ref) for ref in refs]
    assert [r["type"] for r in replies] == ["ack"] * 12


async def test_reactions_are_coalesced_into_bursts(connect, live_show, viewer, viewer2):
    reactor = await connect(live_show, viewer)
    watcher = await connect(live_show, viewer2)
    for _ in range(15):
        await reactor.comm.send_json_to({"type": "reaction.send", "emoji": "❤️"})
    await reactor.comm.send_json_to({"type": "reaction.send", "emoji": "🔥"})
    total: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.5
    while loop.time() < deadline:
        try:
            frame = await watcher.read(timeout=deadline - loop.time())
        except TimeoutError:
            break
        for event in frame:
            if event["type"] == "reactions.burst":
                for emoji, n in event["counts"].items():
                    total[emoji] = total.get(emoji, 0) + n
    assert total == {"❤️": 15, "🔥": 1}
    bursts = watcher.of_type("reactions.burst")
    assert 1 <= len(bursts) <= 3


async def test_a_bad_reaction_is_refused(connect, live_show, viewer):
    socket = await connect(live_show, viewer)
    await socket.comm.send_json_to({"type": "reaction.send", "emoji": "<b>", "ref": 1})
    assert (await socket.reply(1))["code"] == "invalid"


async def test_a_user_gets_at_most_ten_sockets_per_show(connect, live_show, viewer):
    for _ in range(10):
        socket = await connect(live_show, viewer)
        assert socket.events[0]["type"] == "snapshot"
    eleventh = await connect(live_show, viewer)
    assert eleventh.events[0]["code"] == "too_many_connections"
    assert await eleventh.closed() == 4029


async def test_the_viewer_count_follows_connections(
    connect, live_show, viewer, viewer2
):
    first = await connect(live_show, viewer)
    await connect(live_show, viewer2)
    await first.wait_for("viewers.count", count=2, timeout=4)


async def test_the_count_is_people_in_the_audience_not_sockets(
    connect, live_show, host, viewer, viewer2
):
    """A viewer's second tab counts once and the host not at all: with the
    host, one viewer on two sockets and another viewer, two are watching."""
    from live.hub import get_hub

    studio = await connect(live_show, host)
    await connect(live_show, viewer)
    await connect(live_show, viewer)
    await connect(live_show, viewer2)
    await studio.wait_for("viewers.count", count=2, timeout=4)
    assert await get_hub().viewer_count(live_show.pk) == 2
