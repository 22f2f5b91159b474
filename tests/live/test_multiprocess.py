"""Two Daphne processes sharing the real Redis: fan-out and bans cross processes."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from channels.db import database_sync_to_async

from tests.live.conftest import login_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def _open(base, show, user):
    cookie = await database_sync_to_async(login_cookie)(user)
    socket = await websockets.connect(
        f"{base}/ws/shows/{show.slug}/",
        origin="http://127.0.0.1",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        open_timeout=10,
    )
    first = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert first[0]["type"] == "snapshot"
    return socket


async def _until(socket, predicate, timeout):
    """The first event (kept from earlier reads too) that ``predicate`` accepts."""
    seen = socket.__dict__.setdefault("seen_events", [])
    for index, event in enumerate(seen):
        if predicate(event):
            return seen.pop(index)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = json.loads(
            await asyncio.wait_for(socket.recv(), deadline - loop.time())
        )
        seen.extend(frame)
        for index, event in enumerate(seen):
            if predicate(event):
                return seen.pop(index)


async def test_a_message_sent_through_one_process_reaches_viewers_of_the_other(
    daphne_pair, live_show, viewer, viewer2
):
    one, two = daphne_pair
    sender = await _open(one, live_show, viewer)
    receiver = await _open(two, live_show, viewer2)
    try:
        await sender.send(json.dumps({"type": "chat.send", "text": "across", "ref": 1}))
        got = await _until(
            receiver, lambda e: e.get("type") == "chat.message", timeout=5
        )
        assert got["text"] == "across"
        assert got["author"]["id"] == viewer.pk
        count = await _until(
            receiver,
            lambda e: e.get("type") == "viewers.count" and e["count"] == 2,
            timeout=5,
        )
        assert count["count"] == 2
    finally:
        await sender.close()
        await receiver.close()


async def test_a_ban_issued_on_one_process_closes_the_socket_on_the_other(
    daphne_pair, live_show, viewer, moderator
):
    one, two = daphne_pair
    mod = await _open(one, live_show, moderator)
    banned = await _open(two, live_show, viewer)
    try:
        await mod.send(
            json.dumps(
                {"type": "user.restrict", "user_id": viewer.pk, "kind": "ban", "ref": 1}
            )
        )
        error = None

        async def read_until_closed():
            nonlocal error
            while True:
                frame = json.loads(await asyncio.wait_for(banned.recv(), 10))
                error = next((e for e in frame if e.get("type") == "error"), error)

        with pytest.raises(websockets.ConnectionClosed) as closed:
            await read_until_closed()
        assert closed.value.rcvd.code == 4003
        assert error["code"] == "banned"
        again = await websockets.connect(
            f"{two}/ws/shows/{live_show.slug}/",
            origin="http://127.0.0.1",
            additional_headers={
                "Cookie": "sessionid="
                + await database_sync_to_async(login_cookie)(viewer)
            },
        )
        frame = json.loads(await asyncio.wait_for(again.recv(), 5))
        assert frame[0]["code"] == "banned"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(again.recv(), 5)
    finally:
        await mod.close()
        await banned.close()
