"""What an order costs: its lines, shipping to the buyer's country, and tax.

All in integer minor units of one currency. Rules, written down because
buyers and tax offices read them:

* **Shipping** is the flat rate of the brand's zone that lists the buyer's
  country, per order; free when the lines' subtotal reaches the zone's
  ``free_from_minor``. Orders of goods that are not posted (digital, pickup)
  ship for nothing and need no address. A brand without a zone for the
  country does not deliver there (``NotShippable``).
* **Tax** is VAT-style: one rate for the buyer's country (the brand's
  ``TaxRate`` for it, else its rate with no country, else none), applied to
  the subtotal plus shipping (shipping follows the goods it carries). When
  the brand's prices include tax the total is unchanged and the tax is the
  part of it that is tax: ``gross * rate / (1 + rate)``; otherwise the tax is
  ``net * rate`` and is added.
* **Rounding**: once per order, on the whole taxable amount, half up to the
  currency's minor unit (integer arithmetic, no floats), so the order's tax
  line is exactly what is added or contained, and a total never differs
  from subtotal + shipping (+ tax) by a cent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from checkout.exceptions import NotShippable
from checkout.models import ShippingZone, TaxRate
from checkout.money import Money
from shows.models import Brand

BASIS = 10_000  # basis points in one


@dataclass(frozen=True)
class Line:
    unit_minor: int
    quantity: int
    requires_shipping: bool = True


@dataclass(frozen=True)
class Quote:
    currency: str
    subtotal_minor: int
    shipping_minor: int
    tax_minor: int
    total_minor: int
    tax_rate_bp: int
    tax_included: bool
    # Whether the buyer must give an address (some line is posted).
    needs_address: bool

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for non-negative integers."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("non-negative numerator and positive denominator only")
    return (2 * numerator + denominator) // (2 * denominator)


def tax_of(amount_minor: int, rate_bp: int, *, included: bool) -> int:
    """The tax in (``included``) or on ``amount_minor`` at ``rate_bp``."""
    if included:
        return divide_half_up(amount_minor * rate_bp, BASIS + rate_bp)
    return divide_half_up(amount_minor * rate_bp, BASIS)


def zone_for(*, brand: Brand, currency: str, country: str) -> ShippingZone | None:
    for zone in ShippingZone.objects.filter(brand=brand, currency=currency):
        if country.upper() in zone.country_codes:
            return zone
    return None


def rate_for(*, brand: Brand, country: str) -> int:
    rates = dict(
        TaxRate.objects.filter(
            brand=brand, country__in=[country.upper(), ""]
        ).values_list("country", "rate_bp")
    )
    return int(rates.get(country.upper(), rates.get("", 0)))


def quote(
    *, brand: Brand, currency: str, lines: Iterable[Line], country: str = ""
) -> Quote:
    """The price of ``lines`` delivered to ``country`` (empty: not known yet,
    or nothing is posted). Raises ``NotShippable`` when something is posted
    and the brand has no zone for the country in this currency."""
    lines = list(lines)
    subtotal = sum(line.unit_minor * line.quantity for line in lines)
    needs_address = any(line.requires_shipping for line in lines)
    shipping = 0
    if needs_address and country:
        zone = zone_for(brand=brand, currency=currency, country=country)
        if zone is None:
            raise NotShippable()
        free = zone.free_from_minor is not None and subtotal >= zone.free_from_minor
        shipping = 0 if free else zone.rate_minor
    rate = rate_for(brand=brand, country=country)
    included = brand.prices_include_tax
    taxable = subtotal + shipping
    tax = tax_of(taxable, rate, included=included)
    return Quote(
        currency=currency,
        subtotal_minor=subtotal,
        shipping_minor=shipping,
        tax_minor=tax,
        total_minor=taxable if included else taxable + tax,
        tax_rate_bp=rate,
        tax_included=included,
        needs_address=needs_address,
    )
