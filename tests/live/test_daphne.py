"""The room socket where browsers meet it: a real Daphne process (autobahn and
Twisted), real sockets. Close codes an application sends must survive autobahn
(it turns anything outside 1000 and 3000-4999 into 1011); the slow-reader rule
must fire on a real TCP socket; anonymous sockets are capped per address."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async

from realtime.models import OutboxEvent
from shows.services import moderation, room
from tests.live.conftest import login_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TCP_CLOSE = 7


@contextlib.contextmanager
def daphne(**overrides: Any) -> Iterator[str]:
    """The whole ASGI app in a Daphne child process with ``overrides`` applied
    to its settings; yields ``ws://127.0.0.1:<port>``."""
    from channels.testing.live import make_application, set_database_connection
    from daphne.testing import DaphneProcess
    from django.conf import settings

    def setup() -> None:
        set_database_connection()
        for name, value in overrides.items():
            setattr(settings, name, value)

    process = DaphneProcess(
        "127.0.0.1", partial(make_application, static_wrapper=None), setup=setup
    )
    process.start()
    try:
        if not process.ready.wait(timeout=30):
            pytest.fail("Daphne did not start")
        yield f"ws://127.0.0.1:{process.port.value}"
    finally:
        process.terminate()
        process.join(timeout=10)


@pytest.fixture
def server(transactional_db: None, redis_client_if_any: Any) -> Iterator[str]:
    with daphne() as base:
        yield base


async def _open(base: str, slug: str, cookie: str = "") -> Any:
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    return await websockets.connect(
        f"{base}/ws/shows/{slug}/",
        origin=base.replace("ws://", "http://"),
        additional_headers=headers,
        open_timeout=10,
        max_size=None,
    )


async def _close_code(ws: Any, timeout: float = 10) -> int | None:
    """Read until the server closes; its close code (what a browser sees)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    return ws.close_code


async def _first(ws: Any, kind: str) -> dict[str, Any]:
    """The first event of ``kind`` (viewer counts may come first)."""
    async with asyncio.timeout(10):
        while True:
            for event in json.loads(await ws.recv()):
                if event.get("type") == kind:
                    return dict(event)


def _cookie(user: Any) -> str:
    return login_cookie(user)


async def test_an_unknown_show_is_closed_with_4404_after_the_handshake(server):
    ws = await _open(server, "no-such-show")  # the handshake itself succeeds
    assert await _close_code(ws) == 4404


async def test_a_frame_over_16_kib_is_closed_with_4413(server, live_show, viewer):
    cookie = await database_sync_to_async(_cookie)(viewer)
    ws = await _open(server, live_show.slug, cookie)
    await ws.recv()  # snapshot
    await ws.send('{"type":"chat.send","text":"' + "a" * 17000 + '"}')
    assert await _close_code(ws) == 4413


async def test_a_flood_of_malformed_frames_is_closed_with_4400(server, live_show):
    ws = await _open(server, live_show.slug)
    await ws.recv()
    await ws.send("not json")
    assert (await _first(ws, "error"))["code"] == "malformed"
    for _ in range(12):
        await ws.send("[1,2")
    assert await _close_code(ws) == 4400


async def test_a_private_show_without_its_code_is_closed_with_4001(
    server, private_live_show
):
    ws = await _open(server, private_live_show.slug)
    frame = json.loads(await ws.recv())
    assert frame[0]["code"] == "access_code"
    assert await _close_code(ws) == 4001


async def test_a_banned_user_is_closed_with_4003_and_refused_again(
    server, live_show, viewer, moderator
):
    cookie = await database_sync_to_async(_cookie)(viewer)
    ws = await _open(server, live_show.slug, cookie)
    await ws.recv()
    await database_sync_to_async(moderation.user_restrict)(
        show=live_show, actor=moderator, user_id=viewer.pk, kind="ban", seconds=None
    )
    assert await _close_code(ws) == 4003
    again = await _open(server, live_show.slug, cookie)
    assert json.loads(await again.recv())[0]["code"] == "banned"
    assert await _close_code(again) == 4003


async def test_too_many_sockets_of_one_user_close_the_extra_one_with_4029(
    transactional_db, redis_client_if_any, live_show, viewer
):
    cookie = await database_sync_to_async(_cookie)(viewer)
    with daphne(SHOWFLOOR_ROOM_MAX_SOCKETS_PER_USER=2) as base:
        kept = [await _open(base, live_show.slug, cookie) for _ in range(2)]
        for ws in kept:
            assert json.loads(await ws.recv())[0]["type"] == "snapshot"
        extra = await _open(base, live_show.slug, cookie)
        assert json.loads(await extra.recv())[0]["code"] == "too_many_connections"
        assert await _close_code(extra) == 4029
        await kept[0].close()
        await asyncio.sleep(0.3)
        again = await _open(base, live_show.slug, cookie)  # a slot came free
        assert json.loads(await again.recv())[0]["type"] == "snapshot"
        for ws in (kept[1], again):
            await ws.close()


async def test_anonymous_sockets_are_capped_per_client_address(
    transactional_db, redis_client_if_any, live_show, viewer
):
    """Visitors without an account (and without a session) can open only so
    many sockets from one address; a signed-in viewer is counted per account."""
    with daphne(SHOWFLOOR_ROOM_MAX_ANONYMOUS_PER_ADDRESS=3) as base:
        kept = [await _open(base, live_show.slug) for _ in range(3)]
        for ws in kept:
            assert json.loads(await ws.recv())[0]["type"] == "snapshot"
        extra = await _open(base, live_show.slug)
        assert json.loads(await extra.recv())[0]["code"] == "too_many_connections"
        assert await _close_code(extra) == 4029
        cookie = await database_sync_to_async(_cookie)(viewer)
        member = await _open(base, live_show.slug, cookie)
        assert json.loads(await member.recv())[0]["type"] == "snapshot"
        for ws in (*kept, member):
            await ws.close()


def _raw_viewer(base: str, slug: str, rcvbuf: int) -> socket.socket:
    """A websocket client on a plain socket with a small receive buffer, which
    reads the handshake and then never reads again."""
    host, port = base.removeprefix("ws://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    sock.sendall(
        (
            f"GET /ws/shows/{slug}/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _tcp_state(sock: socket.socket) -> int:
    return int(
        struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]
    )


def test_a_viewer_that_stops_reading_is_dropped_soon_after_passing_the_limit(
    server, live_show, host
):
    """At 40 messages/s to a socket that never reads, the server drops it
    (TCP reset) within 5 s of the unsent data passing
    SHOWFLOOR_ROOM_MAX_BUFFER_KIB (256 KiB), counting what the kernel holds
    for it too; it does not wait for Daphne's ping timeout (about 50 s)."""
    from django.conf import settings

    limit = int(settings.SHOWFLOOR_ROOM_MAX_BUFFER_KIB) * 1024
    sock = _raw_viewer(server, live_show.slug, rcvbuf=4096)
    text = "x" * 490
    sent_bytes = 0
    # The server cannot hold more unsent than was sent: from this moment the
    # viewer may have passed the limit.
    passed_at: float | None = None
    dropped_at: float | None = None
    started = time.monotonic()
    try:
        for index in range(40 * 40):
            room.chat_send(show=live_show, user=host, text=f"{index:05d} {text}")
            sent_bytes += len(
                OutboxEvent.objects.filter(show_id=live_show.pk)
                .values_list("data", flat=True)
                .latest("id")
            )
            now = time.monotonic()
            if passed_at is None and sent_bytes > limit:
                passed_at = now
            if _tcp_state(sock) == TCP_CLOSE:
                dropped_at = now
                break
            time.sleep(max(0.0, started + (index + 1) / 40 - time.monotonic()))
    finally:
        sock.close()
    assert dropped_at is not None, "the slow viewer was never dropped"
    # Not before it could have fallen behind by the limit.
    assert passed_at is not None
    assert dropped_at - passed_at < 5.0
