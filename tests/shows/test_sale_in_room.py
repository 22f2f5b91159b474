"""A flash sale on the room's cards: ``sale.started`` and the snapshot's
``sales`` carry the same card, with prices formatted by the server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from checkout import selectors as checkout_selectors
from checkout.models import FlashSale
from checkout.services import sale_close_due, sale_start
from shows import selectors
from shows.models import Question
from shows.services import room

pytestmark = pytest.mark.django_db(transaction=True)

MIC_IN_EVERY_LANGUAGE = {"en": "€89.00", "de": "89,00\xa0€", "fr": "89,00\xa0€"}


@pytest.fixture
def broadcasts(monkeypatch):
    """Every room event sent, when its transaction commits."""
    from realtime import events

    sent: list[dict] = []

    def record(show_id, event):
        transaction.on_commit(lambda: sent.append(event))

    monkeypatch.setattr(events, "broadcast", record)
    return sent


@pytest.fixture
def mic_on_sale(live_show, products, host, broadcasts):
    """ "Desk Mic" (list €89.00) pinned and on sale at €49.00, two per buyer,
    for a minute."""
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    return sale_start(
        show=live_show,
        user=host,
        product_id=products[1].pk,
        price_minor=4900,
        duration_seconds=60,
        per_buyer_limit=2,
    )


def test_sale_started_carries_the_sale_and_list_prices_formatted_for_every_language(
    mic_on_sale, products, broadcasts
):
    """One event reaches viewers of every language: it carries minor units and
    each of the site's languages' writing of the sale price and of each
    option's list price, the buyer limit and the end in server epoch ms."""
    (started,) = [e for e in broadcasts if e["type"] == "sale.started"]
    mic = products[1].variants.get()
    assert started["product_id"] == products[1].pk
    assert started["price_minor"] == 4900
    assert started["currency"] == "EUR"
    assert started["per_buyer_limit"] == 2
    assert started["ends_at"] == int(mic_on_sale.ends_at.timestamp() * 1000)
    assert started["ends_at"] - started["server_now"] == 60_000
    assert started["price"]["en"] == "€49.00"
    assert started["price"]["de"] == "49,00\xa0€"
    assert set(started["price"]) == {"en", "de", "fr", "fy"}
    (variant,) = started["variants"]
    assert variant["id"] == mic.pk
    assert variant["on_sale"] is True
    assert variant["list_price_minor"] == 8900
    for language, text in MIC_IN_EVERY_LANGUAGE.items():
        assert variant["list_price"][language] == text


def test_the_snapshot_carries_the_open_sale_as_the_event_does(
    mic_on_sale, live_show, broadcasts
):
    """A viewer who connects during the sale gets the same card as the room
    got live (the clock fields aside), so a reload shows the sale."""
    (started,) = [e for e in broadcasts if e["type"] == "sale.started"]
    snapshot = selectors.room_snapshot_now(
        show=live_show,
        user=None,
        viewers=1,
        parts=(checkout_selectors.room_sales,),
    )
    (card,) = snapshot["sales"]
    clocks = {"server_now", "type"}
    assert {k: v for k, v in card.items() if k not in clocks} == {
        k: v for k, v in started.items() if k not in clocks
    }
    assert card["server_now"] >= started["server_now"]


def test_a_closed_or_timed_out_sale_is_not_in_the_snapshot(
    mic_on_sale, live_show, broadcasts
):
    """The window is the server's: past ``ends_at`` the sale is gone from the
    snapshot even before the sweeper closes it, and ``sale.ended`` follows."""
    FlashSale.objects.update(
        starts_at=timezone.now() - timedelta(minutes=2),
        ends_at=timezone.now() - timedelta(seconds=1),
    )
    assert checkout_selectors.room_sales(show=live_show) == {"sales": []}
    assert sale_close_due() == 1
    assert [e["product_id"] for e in broadcasts if e["type"] == "sale.ended"] == [
        mic_on_sale.product_id
    ]
    assert checkout_selectors.room_sales(show=live_show) == {"sales": []}


def test_the_snapshot_with_its_sales_takes_a_fixed_number_of_queries(
    mic_on_sale, live_show, products, host, make_user, django_assert_num_queries
):
    """The room's eight queries, and two for the sales: the open sales with
    their product, and the product's options (one when none is open)."""
    viewer = make_user()
    room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
    # A question, so that the viewer's votes are read too (the eighth query).
    Question.objects.create(show=live_show, author=viewer, text="Battery life?")
    with django_assert_num_queries(10):
        snapshot = selectors.room_snapshot(
            show=live_show,
            user=viewer,
            seq=3,
            viewers=1,
            parts=(checkout_selectors.room_sales,),
        )
    assert len(snapshot["sales"]) == 1
    FlashSale.objects.update(closed_at=timezone.now())
    with django_assert_num_queries(9):
        snapshot = selectors.room_snapshot(
            show=live_show,
            user=viewer,
            seq=3,
            viewers=1,
            parts=(checkout_selectors.room_sales,),
        )
    assert snapshot["sales"] == []
