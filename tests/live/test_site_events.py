"""Site-wide events over the show sockets: a show going live is told, once
per go-live, to the signed-in viewers of every other open room
(``events.broadcast_site``, ``Hub._site_event``)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from shows import services

pytestmark = [pytest.mark.django_db(transaction=True)]


def _scheduled(slug: str, *, access_code: str = "") -> Any:
    nordlicht = services.brand_create(name="Nordlicht", slug=f"nordlicht-{slug}")
    return services.show_create(
        brand=nordlicht,
        slug=slug,
        title="Lamp night",
        scheduled_at=timezone.now() + timedelta(minutes=5),
        access_code=access_code,
    )


async def _drain(socket: Any) -> None:
    """Read what the server already sent (the hub writes a site event to all
    of a room's sockets in one go, so it is there once another one has it)."""
    with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
        while True:
            await socket.read(timeout=0.3)


async def test_a_show_going_live_is_told_to_signed_in_viewers_of_other_rooms(
    connect, live_show, viewer, viewer2
):
    other = await database_sync_to_async(_scheduled)("lamp-night")
    watching = await connect(live_show, viewer)
    guest = await connect(live_show)
    in_its_own_room = await connect(other, viewer2)

    await database_sync_to_async(services.show_start)(show=other)

    told = await watching.wait_for("brand.live")
    assert told["brand"] == "Nordlicht"
    assert told["brand_id"] == other.brand_id
    assert told["show_id"] == other.pk
    assert told["url"] == "/shows/lamp-night/"
    assert told["title"] == "Lamp night"
    assert "seq" not in told
    await in_its_own_room.wait_for("show.status", status="live")
    await _drain(guest)
    await _drain(in_its_own_room)
    assert guest.of_type("brand.live") == []
    assert in_its_own_room.of_type("brand.live") == []


async def test_a_private_show_going_live_is_told_to_nobody(connect, live_show, viewer):
    secret = await database_sync_to_async(_scheduled)("lamp-vip", access_code="v")
    watching = await connect(live_show, viewer)
    await database_sync_to_async(services.show_start)(show=secret)
    ref = await watching.send("chat.send", text="still here")
    assert (await watching.reply(ref))["type"] == "ack"
    await _drain(watching)
    assert watching.of_type("brand.live") == []
