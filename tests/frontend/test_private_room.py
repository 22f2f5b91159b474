"""A private show's room websocket opens only after the access code."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie_after_code(slug: str, code: str) -> str:
    client = Client()
    client.post(reverse("show_detail", args=[slug]), {"code": code})
    return client.cookies["sessionid"].value if "sessionid" in client.cookies else ""


async def first_frame(cookie: str, slug: str) -> tuple[list, int | None]:
    from config.asgi import application

    headers = [(b"origin", b"http://testserver")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    comm = WebsocketCommunicator(application, f"/ws/shows/{slug}/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    frame = json.loads((await comm.receive_output(timeout=5))["text"])
    close_code = None
    try:
        output = await asyncio.wait_for(comm.output_queue.get(), 1)
        if output["type"] == "websocket.close":
            close_code = output.get("code")
    except TimeoutError:
        pass
    await comm.disconnect()
    return frame, close_code


async def test_private_room_refuses_a_socket_without_the_code(private_live_show):
    """Without the code (or with a wrong one) the socket gets an access_code
    error and is closed; no snapshot leaks the chat or the pins."""
    from live.hub import get_hub

    wrong = await database_sync_to_async(session_cookie_after_code)(
        private_live_show.slug, "nope"
    )
    for cookie in ("", wrong):
        frame, close_code = await first_frame(cookie, private_live_show.slug)
        assert frame[0]["type"] == "error"
        assert frame[0]["code"] == "access_code"
        assert close_code == 4001
    await get_hub().stop()


async def test_private_room_opens_after_the_code_was_entered(private_live_show):
    """A session that entered the code on the show page gets the snapshot."""
    from live.hub import get_hub

    cookie = await database_sync_to_async(session_cookie_after_code)(
        private_live_show.slug, "Club-2026"
    )
    assert cookie
    frame, close_code = await first_frame(cookie, private_live_show.slug)
    assert frame[0]["type"] == "snapshot"
    assert close_code is None
    await get_hub().stop()
