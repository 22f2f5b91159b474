"""A brand's delivery settings and the quote for a delivered order
(checkout/services/delivery.py)."""

from __future__ import annotations

import pytest

from checkout.exceptions import (
    AddressInvalid,
    AddressRequired,
    DeliverySettingsInvalid,
    NotShippable,
)
from checkout.models import SavedAddress, ShippingZone
from checkout.pricing import Line
from checkout.services import delivery

pytestmark = pytest.mark.django_db

BERLIN = {
    "name": "Lena Vogel",
    "line1": "Torstraße 1",
    "postal_code": "10119",
    "city": "Berlin",
    "country": "DE",
}


def test_a_zone_is_saved_with_clean_codes_and_changed_in_place(europe):
    zone = ShippingZone.objects.get()
    assert zone.countries == "AT,DE,NL"
    delivery.shipping_zone_set(
        brand=europe, name="Europe", countries=["DE"], rate_minor=590, currency="EUR"
    )
    zone.refresh_from_db()
    assert (zone.countries, zone.rate_minor, zone.free_from_minor) == ("DE", 590, None)


@pytest.mark.parametrize("countries", [[], ["DEU"], ["D1"], ["NL"]])
def test_a_zone_without_clean_countries_or_overlapping_another_is_refused(
    europe, countries
):
    with pytest.raises(DeliverySettingsInvalid):
        delivery.shipping_zone_set(
            brand=europe,
            name="Other",
            countries=countries,
            rate_minor=1,
            currency="EUR",
        )
    assert ShippingZone.objects.count() == 1


@pytest.mark.parametrize(("country", "rate"), [("DE", -1), ("DE", 10001), ("DEU", 5)])
def test_tax_rates_outside_0_to_100_percent_are_refused(brand, country, rate):
    with pytest.raises(DeliverySettingsInvalid):
        delivery.tax_rate_set(brand=brand, country=country, rate_bp=rate)


def test_the_quote_for_a_posted_order_needs_a_valid_address(europe, show):
    with pytest.raises(AddressRequired):
        delivery.delivery_quote(
            show=show, currency="EUR", lines=[Line(8900, 1)], address=None
        )
    with pytest.raises(AddressInvalid):
        delivery.delivery_quote(
            show=show,
            currency="EUR",
            lines=[Line(8900, 1)],
            address={**BERLIN, "postal_code": "101"},
        )
    with pytest.raises(NotShippable):
        delivery.delivery_quote(
            show=show,
            currency="EUR",
            lines=[Line(8900, 1)],
            address={**BERLIN, "country": "US", "area": "NY", "postal_code": "10001"},
        )
    quote, address = delivery.delivery_quote(
        show=show, currency="EUR", lines=[Line(8900, 1)], address=BERLIN
    )
    assert address is not None
    assert address.city == "Berlin"
    assert (quote.shipping_minor, quote.tax_minor, quote.total_minor) == (
        490,
        1499,
        9390,
    )


def test_a_buyers_address_is_saved_once_and_can_be_removed(make_user):
    from checkout.addresses import address_clean

    user = make_user(email="lena@example.test")
    delivery.saved_address_set(user=user, address=address_clean(BERLIN))
    delivery.saved_address_set(
        user=user, address=address_clean({**BERLIN, "line1": "Torstraße 2"})
    )
    assert SavedAddress.objects.get(user=user).line1 == "Torstraße 2"
    assert delivery.saved_address_remove(user=user)
    assert not delivery.saved_address_remove(user=user)


@pytest.mark.django_db(transaction=True)
def test_a_delivered_order_costs_shipping_and_its_email_says_where_it_goes(
    stripe_settings, europe, pinned, mic, make_user, run_tasks, settings
):
    """The order service prices the order delivered (shipping and the tax in
    it), keeps the address (and the buyer's copy when asked), and the paid
    email carries the address, the shipping and the signed order link."""
    from django.core import mail
    from django.test import Client

    from checkout import services
    from checkout.models import OrderAddress
    from tests.checkout.conftest import new_key

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = make_user(email="lena@example.test")
    buyer = services.Buyer(user=user)
    with pytest.raises(AddressRequired):
        services.order_create(
            show=pinned,
            buyer=buyer,
            variant_id=mic.pk,
            quantity=1,
            idempotency_key=new_key(),
        )
    mic.refresh_from_db()
    assert mic.stock_available == 10
    placed = services.order_create(
        show=pinned,
        buyer=buyer,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
        address=BERLIN,
        save_address=True,
    )
    order = placed.order
    assert (order.subtotal_minor, order.shipping_minor, order.total_minor) == (
        8900,
        490,
        9390,
    )
    assert (order.tax_minor, order.tax_rate_bp, order.tax_included) == (
        1499,
        1900,
        True,
    )
    assert OrderAddress.objects.get(order=order).postal_code == "10119"
    assert SavedAddress.objects.get(user=user).city == "Berlin"
    services.order_pay(order=order, buyer=buyer, method="test")
    run_tasks()
    (message,) = mail.outbox
    assert "Torstraße 1" in message.body
    assert "10119 Berlin" in message.body
    assert "4.90" in message.body
    link = next(line for line in message.body.splitlines() if "/orders/link/" in line)
    page = Client().get(link[link.index("/orders/link/") :].strip())
    assert page.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_wallet_address_replaces_the_typed_one_only_within_the_priced_country(
    stripe_settings, europe, pinned, mic
):
    """Express Checkout asks the wallet for an address: it replaces the one
    typed in the sheet (checked like it) within the country the order was
    priced for; another country, or an order already paid, is refused and the
    address stays."""
    import json

    from checkout.models import OrderAddress
    from tests.checkout.test_views import api_client, buy

    client, token = api_client()
    placed = buy(
        client,
        token,
        pinned.slug,
        {
            "variant_id": mic.pk,
            "quantity": 1,
            "email": "w@example.test",
            "address": BERLIN,
        },
    )
    assert placed.status_code == 201, placed.content
    order = placed.json()
    assert order["ship_to_country"] == "DE"
    url = f"/api/orders/{order['id']}/address"

    def send(address):
        return client.post(
            url,
            data=json.dumps({"address": address}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )

    munich = {
        **BERLIN,
        "line1": "Marienplatz 8",
        "postal_code": "80331",
        "city": "München",
    }
    assert send(munich).status_code == 200
    assert OrderAddress.objects.get(order__public_id=order["id"]).city == "München"
    vienna = {**BERLIN, "postal_code": "1010", "city": "Wien", "country": "AT"}
    refused = send(vienna)
    assert refused.status_code == 409
    assert refused.json()["code"] == "address_country_changed"
    bad = send({**munich, "postal_code": "ABC"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "address_invalid"
    assert "postal_code" in bad.json()["fields"]
    assert OrderAddress.objects.get(order__public_id=order["id"]).city == "München"
    # Another guest's session cannot touch it.
    stranger, stranger_token = api_client()
    assert (
        stranger.post(
            url,
            data=json.dumps({"address": munich}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=stranger_token,
        ).status_code
        == 404
    )
    paid = client.post(
        f"/api/orders/{order['id']}/pay",
        data=json.dumps({"method": "test"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert paid.json()["status"] == "paid"
    late = send({**munich, "line1": "Kaufingerstraße 1"})
    assert late.status_code == 409
    assert late.json()["code"] == "order_not_payable"
    assert (
        OrderAddress.objects.get(order__public_id=order["id"]).line1 == "Marienplatz 8"
    )
