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


@pytest.fixture
def europe(brand):
    delivery.shipping_zone_set(
        brand=brand,
        name="Europe",
        countries=["de", "AT", " nl "],
        rate_minor=490,
        currency="EUR",
        free_from_minor=10000,
    )
    delivery.tax_rate_set(brand=brand, country="de", rate_bp=1900)
    return brand


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
    assert address is not None and address.city == "Berlin"
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
