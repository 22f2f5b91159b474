"""The room's socket: a viewer who connects during a flash sale gets it in the
snapshot, and one already in the room gets ``sale.started`` with its seq."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from checkout.services import sale_start
from live import consumers
from shows.services import room

pytestmark = [pytest.mark.django_db(transaction=True)]


def start_mic_sale(show, products, host):
    return sale_start(
        show=show,
        user=host,
        product_id=products[1].pk,
        price_minor=4900,
        duration_seconds=60,
        per_buyer_limit=2,
    )


async def test_a_viewer_who_joins_during_a_sale_gets_it_in_the_snapshot(
    connect, live_show, products, host, make_user
):
    """Signed-in and anonymous viewers alike (the anonymous snapshot is shared
    by every language, so it carries the prices in each)."""
    await database_sync_to_async(room.product_pin)(
        show=live_show, actor=host, product_id=products[1].pk
    )
    sale = await database_sync_to_async(start_mic_sale)(live_show, products, host)
    consumers.ANONYMOUS_SNAPSHOTS.clear()
    viewer = await database_sync_to_async(make_user)("Vera")
    for socket in (await connect(live_show), await connect(live_show, viewer)):
        snapshot = socket.events[0]
        assert snapshot["type"] == "snapshot"
        (card,) = snapshot["sales"]
        assert card["sale_id"] == sale.pk
        assert card["price"]["fr"] == "49,00\xa0€"
        assert card["variants"][0]["list_price"]["en"] == "€89.00"


async def test_a_viewer_in_the_room_gets_sale_started_with_its_seq(
    connect, live_show, products, host
):
    """A persisted event, after the snapshot's seq, like any other."""
    await database_sync_to_async(room.product_pin)(
        show=live_show, actor=host, product_id=products[1].pk
    )
    socket = await connect(live_show)
    assert socket.events[0]["sales"] == []
    await database_sync_to_async(start_mic_sale)(live_show, products, host)
    started = await socket.wait_for("sale.started")
    assert started["seq"] > socket.events[0]["seq"]
    assert started["price"]["en"] == "€49.00"
    assert started["variants"][0]["on_sale"] is True
