"""Shipping, tax and rounding (checkout/pricing.py) and the per-country
address check (checkout/addresses.py)."""

from __future__ import annotations

import pytest

from checkout.addresses import address_clean
from checkout.exceptions import AddressInvalid, NotShippable
from checkout.models import ShippingZone, TaxRate
from checkout.pricing import Line, divide_half_up, quote, tax_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def ships(brand):
    ShippingZone.objects.create(
        brand=brand,
        name="DACH",
        countries="DE, AT,ch",
        rate_minor=490,
        free_from_minor=10000,
        currency="EUR",
    )
    ShippingZone.objects.create(
        brand=brand, name="Benelux", countries="NL,BE", rate_minor=690, currency="EUR"
    )
    TaxRate.objects.create(brand=brand, country="DE", rate_bp=1900)
    TaxRate.objects.create(brand=brand, country="NL", rate_bp=2100)
    TaxRate.objects.create(brand=brand, country="", rate_bp=2000)
    return brand


def test_rounding_is_half_up_on_whole_minor_units():
    assert divide_half_up(5, 2) == 3
    assert divide_half_up(4, 2) == 2
    assert divide_half_up(1, 3) == 0
    assert divide_half_up(2, 3) == 1
    with pytest.raises(ValueError, match="non-negative"):
        divide_half_up(-1, 2)


@pytest.mark.parametrize(
    ("amount", "rate", "included", "tax"),
    [
        (8900, 1900, True, 1421),  # 89.00 incl. 19 %: 14.2101… → 14.21
        (8900, 1900, False, 1691),  # 89.00 + 19 % = 16.91
        (119, 1900, True, 19),  # 1.19 incl. 19 % is exactly 0.19
        (5, 1900, False, 1),  # 0.95 cent rounds up to 1
        (2, 2100, False, 0),  # 0.42 cent rounds down
        (10000, 0, True, 0),
    ],
)
def test_tax_in_or_on_an_amount(amount, rate, included, tax):
    assert tax_of(amount, rate, included=included) == tax


def test_a_german_buyer_pays_flat_shipping_with_vat_included(ships):
    got = quote(brand=ships, currency="EUR", lines=[Line(8900, 1)], country="de")
    assert (got.subtotal_minor, got.shipping_minor) == (8900, 490)
    assert got.tax_rate_bp == 1900
    assert got.tax_minor == tax_of(9390, 1900, included=True) == 1499
    assert got.total_minor == 9390
    assert got.needs_address


def test_shipping_is_free_from_the_zones_threshold(ships):
    got = quote(brand=ships, currency="EUR", lines=[Line(5000, 2)], country="AT")
    assert (got.shipping_minor, got.total_minor) == (0, 10000)
    # Austria has no rate of its own: the brand's rate for any country.
    assert got.tax_rate_bp == 2000


def test_tax_added_when_prices_exclude_it(ships):
    ships.prices_include_tax = False
    got = quote(brand=ships, currency="EUR", lines=[Line(8900, 1)], country="NL")
    assert (got.shipping_minor, got.tax_rate_bp) == (690, 2100)
    assert got.tax_minor == divide_half_up((8900 + 690) * 2100, 10000) == 2014
    assert got.total_minor == 8900 + 690 + 2014
    assert not got.tax_included


def test_a_country_outside_every_zone_is_not_shipped_to(ships):
    with pytest.raises(NotShippable):
        quote(brand=ships, currency="EUR", lines=[Line(8900, 1)], country="US")
    with pytest.raises(NotShippable):
        # A zone in another currency does not count.
        quote(brand=ships, currency="GBP", lines=[Line(8900, 1)], country="DE")


def test_goods_that_are_not_posted_need_no_address_and_no_shipping(ships):
    got = quote(
        brand=ships,
        currency="EUR",
        lines=[Line(1500, 2, requires_shipping=False)],
        country="US",
    )
    assert not got.needs_address
    assert (got.shipping_minor, got.total_minor) == (0, 3000)


def test_a_german_address_is_checked_and_kept_as_typed():
    clean = address_clean(
        {
            "name": " Lena  Vogel ",
            "line1": "Torstraße 1",
            "line2": "",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "de",
        }
    )
    assert (clean.name, clean.city, clean.country) == ("Lena Vogel", "Berlin", "DE")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"line1": "Torstr. 1", "postal_code": "1011", "city": "Berlin"},
            "postal_code",
        ),
        ({"line1": "Torstr. 1", "postal_code": "10119"}, "city"),
        ({"postal_code": "10119", "city": "Berlin"}, "line1"),
        ({"line1": "x", "postal_code": "10119", "city": "Berlin", "name": ""}, "name"),
        (
            {"line1": "x", "city": "Berlin", "postal_code": "10119", "country": "ZZ"},
            "country",
        ),
        ({"line1": ["x"], "city": "Berlin", "postal_code": "10119"}, "line1"),
    ],
)
def test_an_address_that_does_not_fit_its_country_says_which_field(data, field):
    full = {"name": "Lena", "country": "DE", **data}
    with pytest.raises(AddressInvalid) as caught:
        address_clean(full)
    assert field in caught.value.fields, caught.value.fields
