"""The bag (checkout/services/bag.py and its API): several products, each line
holding its own stock, paid once; never oversold, given back on expiry or when
taken out, and the sale's per-buyer limit counted across bag and Buy."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from checkout import services
from checkout.exceptions import (
    AddressRequired,
    BagEmpty,
    CurrencyMismatch,
    OverBuyerLimit,
    QuantityInvalid,
    ShowNotLive,
    SoldOut,
    UnknownVariant,
)
from checkout.models import FlashSale, Order, StockHold
from shows.models import Variant
from tests.checkout.conftest import new_key, of_type
from tests.checkout.test_delivery import BERLIN
from tests.checkout.test_views import api_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def phones(products):
    """Studio Headphones: in the line-up, not pinned (25 in stock, €149.00)."""
    return products[0].variants.get()


def stock(variant) -> int:
    return Variant.objects.get(pk=variant.pk).stock_available


def put(client, token, slug, variant_id, quantity):
    return client.put(
        f"/api/shows/{slug}/bag/lines/{variant_id}",
        data=json.dumps({"quantity": quantity}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def post(client, token, url, body):
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def test_a_guest_fills_a_bag_with_pinned_and_lineup_products_and_pays_once(
    stripe_settings, pinned, mic, phones
):
    """Two products (one pinned, one only in the line-up) held line by line; a
    repeated PUT changes nothing; checkout makes one reserved order of both
    lines with one PaymentIntent, and paying it sells both."""
    client, token = api_client()
    answer = put(client, token, pinned.slug, mic.pk, 2)
    assert answer.status_code == 200, answer.content
    assert answer.json()["bag"]["count"] == 2
    assert client.cookies.get("sessionid"), "the first Add starts a guest session"
    assert put(client, token, pinned.slug, phones.pk, 1).status_code == 200
    again = put(client, token, pinned.slug, phones.pk, 1)  # a double tap
    bag = again.json()["bag"]
    assert [(x["product_name"], x["quantity"]) for x in bag["lines"]] == [
        ("Desk Mic", 2),
        ("Studio Headphones", 1),
    ]
    assert bag["subtotal_minor"] == 2 * 8900 + 14900
    assert bag["subtotal"] == "€327.00"
    assert all(line["expires_at"] for line in bag["lines"])
    assert (stock(mic), stock(phones)) == (8, 24)
    assert client.get(f"/api/shows/{pinned.slug}/bag").json()["bag"]["count"] == 3

    refused = post(client, token, f"/api/shows/{pinned.slug}/bag/checkout", {})
    assert refused.status_code == 400
    assert refused.json()["code"] == "email_required"
    placed = post(
        client,
        token,
        f"/api/shows/{pinned.slug}/bag/checkout",
        {"email": "bag@example.test"},
    )
    assert placed.status_code == 201, placed.content
    order = placed.json()
    assert order["status"] == "reserved"
    assert order["from_bag"] is True
    assert order["total_minor"] == 32700
    assert order["client_secret"]
    repeat = post(
        client,
        token,
        f"/api/shows/{pinned.slug}/bag/checkout",
        {"email": "bag@example.test"},
    )
    assert repeat.status_code == 200
    assert repeat.json()["id"] == order["id"]
    after = client.get(f"/api/shows/{pinned.slug}/bag").json()
    assert after["bag"] is None
    assert after["checkout"]["id"] == order["id"]
    # After a reload the sheet pays it without checking out again.
    assert after["checkout"]["client_secret"] == order["client_secret"]
    assert after["checkout"]["expires_at"]

    from checkout import selectors

    # The studio lists the checked-out bag, never the bags being filled.
    listed = selectors.studio_orders(show=pinned).orders
    assert [str(o.public_id) for o in listed] == [order["id"]]
    paid = post(client, token, f"/api/orders/{order['id']}/pay", {"method": "test"})
    assert paid.status_code == 200, paid.content
    assert paid.json()["status"] == "paid"
    row = Order.objects.get(public_id=order["id"])
    assert row.lines.count() == 2
    assert set(row.holds.values_list("status", flat=True)) == {"consumed"}
    assert row.payment.amount_minor == 32700
    assert (stock(mic), stock(phones)) == (8, 24)


def test_taking_units_out_gives_them_back_and_an_emptied_bag_is_gone(
    pinned, mic, phones, guest, sent
):
    bag, buyer = services.bag_set_line(
        show=pinned, buyer=guest, variant_id=mic.pk, quantity=3
    )
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=mic.pk, quantity=5)
    assert stock(mic) == 5
    # Two holds (3, then 2 more); taking 4 out splits the older one.
    bag, _ = services.bag_set_line(
        show=pinned, buyer=buyer, variant_id=mic.pk, quantity=1
    )
    assert stock(mic) == 9
    held = StockHold.objects.filter(order=bag, status="held")
    assert sum(held.values_list("quantity", flat=True)) == 1
    assert bag.lines.get().quantity == 1
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=phones.pk, quantity=1)
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=mic.pk, quantity=0)
    left, _ = services.bag_set_line(
        show=pinned, buyer=buyer, variant_id=phones.pk, quantity=0
    )
    assert left is None
    assert (stock(mic), stock(phones)) == (10, 25)
    assert Order.objects.get(pk=bag.pk).status == "cancelled"
    updates = of_type(sent, "bag.updated")
    assert updates[-1]["bag"] is None
    assert updates[-2]["bag"]["lines"][0]["product_name"] == "Studio Headphones"


def test_a_line_whose_hold_ran_out_goes_back_and_an_empty_bag_expires(
    pinned, mic, phones, guest, sent
):
    bag, buyer = services.bag_set_line(
        show=pinned, buyer=guest, variant_id=mic.pk, quantity=2
    )
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=phones.pk, quantity=1)
    StockHold.objects.filter(order=bag, variant=mic).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.bag_expire_due() == 1
    assert stock(mic) == 10
    bag.refresh_from_db()
    assert bag.status == "open"
    assert [line.product_name for line in bag.lines.all()] == ["Studio Headphones"]
    assert bag.subtotal_minor == 14900
    assert of_type(sent, "bag.updated")[-1]["bag"]["count"] == 1
    # Reading the bag gives back what ran out even before the sweeper passes.
    StockHold.objects.filter(order=bag).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    found, pending = services.bag_get(show=pinned, buyer=buyer)
    assert (found, pending) == (None, None)
    assert stock(phones) == 25
    assert Order.objects.get(pk=bag.pk).status == "expired"
    with pytest.raises(BagEmpty):
        services.bag_checkout(
            show=pinned,
            buyer=services.Buyer(
                user=None, session_key=buyer.session_key, email="x@example.test"
            ),
        )


def test_the_sale_limit_counts_the_bag_and_one_tap_orders_together(
    stripe_settings, pinned, mic, host, make_user
):
    """A sale of at most 2 per buyer: 1 bought with Buy leaves room for 1 in
    the bag, not 2; another buyer is not counted."""
    services.sale_start(
        show=pinned,
        user=host,
        product_id=mic.product_id,
        price_minor=6900,
        per_buyer_limit=2,
        duration_seconds=300,
    )
    buyer = services.Buyer(user=make_user("Sal"))
    services.order_create(
        show=pinned,
        buyer=buyer,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
    )
    with pytest.raises(OverBuyerLimit):
        services.bag_set_line(show=pinned, buyer=buyer, variant_id=mic.pk, quantity=2)
    bag, _ = services.bag_set_line(
        show=pinned, buyer=buyer, variant_id=mic.pk, quantity=1
    )
    line = bag.lines.get()
    assert line.unit_price_minor == 6900
    assert line.sale_id == FlashSale.objects.get().pk
    # The same quantity again is not "one more".
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=mic.pk, quantity=1)
    other = services.Buyer(user=make_user("Oli"))
    services.bag_set_line(show=pinned, buyer=other, variant_id=mic.pk, quantity=2)
    assert stock(mic) == 10 - 1 - 1 - 2


def test_bad_requests_are_refused_and_change_nothing(pinned, mic, products, guest):
    cable = products[2].variants.get()  # none in stock
    with pytest.raises(QuantityInvalid):
        services.bag_set_line(show=pinned, buyer=guest, variant_id=mic.pk, quantity=-1)
    with pytest.raises(QuantityInvalid):
        services.bag_set_line(
            show=pinned, buyer=guest, variant_id=mic.pk, quantity=True
        )
    with pytest.raises(UnknownVariant):
        services.bag_set_line(show=pinned, buyer=guest, variant_id=999999, quantity=1)
    with pytest.raises(SoldOut):
        services.bag_set_line(show=pinned, buyer=guest, variant_id=cable.pk, quantity=1)
    with pytest.raises(OverBuyerLimit):
        services.bag_set_line(show=pinned, buyer=guest, variant_id=mic.pk, quantity=6)
    assert not Order.objects.filter(status="open").exists()
    assert stock(mic) == 10


def test_a_bag_holds_one_currency(pinned, mic, products, brand, guest):
    from shows import services as show_services

    dollars = show_services.product_create(brand=brand, name="Import Mic")
    show_services.variant_create(
        product=dollars,
        sku="USD-1",
        name="Standard",
        price_minor=9900,
        currency="USD",
        stock_available=5,
    )
    show_services.lineup_set(show=pinned, products=[*products, dollars])
    _, buyer = services.bag_set_line(
        show=pinned, buyer=guest, variant_id=mic.pk, quantity=1
    )
    with pytest.raises(CurrencyMismatch):
        services.bag_set_line(
            show=pinned, buyer=buyer, variant_id=dollars.variants.get().pk, quantity=1
        )
    assert dollars.variants.get().stock_available == 5


def test_only_while_live(show, products, guest):
    with pytest.raises(ShowNotLive):
        services.bag_set_line(
            show=show,
            buyer=guest,
            variant_id=products[1].variants.get().pk,
            quantity=1,
        )


def test_a_delivered_bag_is_priced_with_its_address_at_checkout(
    stripe_settings,
    europe,
    pinned,
    mic,
    phones,
    make_user,
):
    """Shipping once per order (free above €100), the tax in the prices, the
    address kept with the order; no address, no checkout, nothing lost."""
    buyer = services.Buyer(user=make_user(email="lena@example.test"))
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=mic.pk, quantity=1)
    quote = services.bag_quote(show=pinned, buyer=buyer, country="DE")
    assert (quote.subtotal_minor, quote.shipping_minor, quote.total_minor) == (
        8900,
        490,
        9390,
    )
    services.bag_set_line(show=pinned, buyer=buyer, variant_id=phones.pk, quantity=1)
    with pytest.raises(AddressRequired):
        services.bag_checkout(show=pinned, buyer=buyer)
    placed = services.bag_checkout(show=pinned, buyer=buyer, address=BERLIN)
    order = placed.order
    assert (order.subtotal_minor, order.shipping_minor, order.total_minor) == (
        23800,
        0,
        23800,
    )
    assert order.tax_rate_bp == 1900
    assert order.shipping_address.city == "Berlin"
    # Checking out gives every hold one more hold period to pay in.
    assert placed.expires_at is not None
    assert placed.expires_at > timezone.now() + timedelta(seconds=250)


def test_thirty_buyers_filling_bags_at_once_never_oversell(
    postgres, pinned, mic, make_user
):
    """Ten units, thirty buyers adding one each at the same moment: exactly ten
    hold one, the rest are told it is sold out; stock ends at zero."""
    from django.db import close_old_connections

    buyers = [services.Buyer(user=make_user(f"B{i}")) for i in range(30)]

    def add(buyer):
        try:
            services.bag_set_line(
                show=pinned, buyer=buyer, variant_id=mic.pk, quantity=1
            )
            return "held"
        except SoldOut:
            return "sold_out"
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(add, buyers))
    assert results.count("held") == 10
    assert results.count("sold_out") == 20
    assert stock(mic) == 0
    assert (
        sum(
            StockHold.objects.filter(status="held", variant=mic).values_list(
                "quantity", flat=True
            )
        )
        == 10
    )
