"""Delivery: where a brand ships, its rates and tax (the brand's settings),
the buyer's address checked and kept, and the price of an order delivered
to it (``checkout/pricing.py`` holds the arithmetic and its rounding)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from django.db import transaction

from checkout import pricing
from checkout.addresses import CleanAddress, address_clean
from checkout.exceptions import (
    AddressCountryChanged,
    AddressRequired,
    DeliverySettingsInvalid,
    OrderNotPayable,
    QuantityInvalid,
    UnknownVariant,
)
from checkout.models import Order, OrderAddress, SavedAddress, ShippingZone, TaxRate
from shows.models import Brand, Show, User


def shipping_zone_set(
    *,
    brand: Brand,
    name: str,
    countries: Iterable[str],
    rate_minor: int,
    currency: str,
    free_from_minor: int | None = None,
) -> ShippingZone:
    """Create or change the brand's zone called ``name``. Raises
    ``DeliverySettingsInvalid`` for a negative amount, no country, or a
    country another of the brand's zones in this currency already lists."""
    codes = sorted({code.strip().upper() for code in countries if code.strip()})
    if not codes or any(len(code) != 2 or not code.isalpha() for code in codes):
        raise DeliverySettingsInvalid()
    if rate_minor < 0 or (free_from_minor is not None and free_from_minor < 0):
        raise DeliverySettingsInvalid()
    with transaction.atomic():
        others = ShippingZone.objects.select_for_update().filter(
            brand=brand, currency=currency
        )
        for zone in others.exclude(name=name):
            if zone.country_codes & set(codes):
                raise DeliverySettingsInvalid()
        zone, _ = ShippingZone.objects.update_or_create(
            brand=brand,
            name=name,
            defaults={
                "countries": ",".join(codes),
                "rate_minor": rate_minor,
                "free_from_minor": free_from_minor,
                "currency": currency,
            },
        )
    return zone


def tax_rate_set(*, brand: Brand, country: str, rate_bp: int) -> TaxRate:
    """The brand's rate for buyers in ``country`` ("" for anywhere else), in
    basis points. Raises ``DeliverySettingsInvalid`` outside 0 to 100 %."""
    country = country.strip().upper()
    if not 0 <= rate_bp <= pricing.BASIS or (country and len(country) != 2):
        raise DeliverySettingsInvalid()
    rate, _ = TaxRate.objects.update_or_create(
        brand=brand, country=country, defaults={"rate_bp": rate_bp}
    )
    return rate


def saved_address_set(*, user: User, address: CleanAddress) -> SavedAddress:
    """Keep ``address`` as the signed-in buyer's address for next time."""
    saved, _ = SavedAddress.objects.update_or_create(
        user=user, defaults=address.as_fields()
    )
    return saved


def saved_address_remove(*, user: User) -> bool:
    """Forget the buyer's saved address; whether there was one."""
    deleted, _ = SavedAddress.objects.filter(user=user).delete()
    return deleted > 0


def delivery_quote(
    *,
    show: Show,
    currency: str,
    lines: Iterable[pricing.Line],
    address: dict[str, object] | None,
) -> tuple[pricing.Quote, CleanAddress | None]:
    """The price of ``lines`` from ``show``'s brand delivered to ``address``,
    and the address checked. A brand that has set up no shipping zone has not
    set up delivery: it sells as before, with no address and no shipping (it
    hands goods over itself), and so do lines that are not posted; the
    address is then None. Raises ``AddressRequired``, ``AddressInvalid`` or
    ``NotShippable``."""
    lines = list(lines)
    clean = None
    posted = any(line.requires_shipping for line in lines)
    if posted and ShippingZone.objects.filter(brand_id=show.brand_id).exists():
        if not address:
            raise AddressRequired()
        clean = address_clean(address)
    found = pricing.quote(
        brand=show.brand,
        currency=currency,
        lines=lines,
        country=clean.country if clean else "",
    )
    return found, clean


def order_address_record(*, order: Order, address: CleanAddress) -> OrderAddress:
    """The order's own copy of where it goes (in the order's transaction)."""
    return OrderAddress.objects.create(order=order, **address.as_fields())


def order_address_replace(*, order: Order, address: dict[str, object]) -> OrderAddress:
    """Replace where a reserved order goes by the address the buyer's wallet
    gave (Express Checkout asks for it again): checked for its country like
    any address, and only within the country the order was priced for, since
    shipping and tax are per country. Raises ``AddressInvalid``,
    ``AddressCountryChanged`` (also for an order that is not delivered) or
    ``OrderNotPayable``."""
    clean = address_clean(address)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != Order.Status.RESERVED:
            raise OrderNotPayable()
        current = OrderAddress.objects.filter(order=locked).first()
        if current is None or current.country != clean.country:
            raise AddressCountryChanged()
        for name, value in clean.as_fields().items():
            setattr(current, name, value)
        current.save()
    return current


def variant_quote(
    *, show: Show, variant_id: int, quantity: int, country: str
) -> pricing.Quote:
    """What ``quantity`` of a line-up variant costs delivered to ``country``
    at this moment (the sale price while a sale runs): what the sheet shows
    before the buyer reserves. Raises ``UnknownVariant``, ``QuantityInvalid``
    or ``NotShippable``."""
    from checkout import selectors

    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise QuantityInvalid()
    variant = selectors.variant_in_show(show=show, variant_id=variant_id)
    if variant is None:
        raise UnknownVariant()
    sale = selectors.sale_for_variant(variant)
    unit = sale.price_minor if sale else variant.price_minor
    posted = bool(getattr(variant, "requires_shipping", True))
    return lines_quote(
        show=show,
        currency=variant.currency,
        lines=[pricing.Line(unit, quantity, posted)],
        country=country,
    )


def lines_quote(
    *, show: Show, currency: str, lines: Iterable[pricing.Line], country: str
) -> pricing.Quote:
    """What ``lines`` cost delivered to ``country`` (no address checked yet):
    the sheet's figures before the buyer reserves or checks out a bag. Lines
    of a brand that has set up no delivery are not posted. Raises
    ``NotShippable``."""
    lines = list(lines)
    posted = any(line.requires_shipping for line in lines)
    if posted and not ShippingZone.objects.filter(brand_id=show.brand_id).exists():
        lines = [replace(line, requires_shipping=False) for line in lines]
        posted = False
    return pricing.quote(
        brand=show.brand,
        currency=currency,
        lines=lines,
        country=country.strip().upper()[:2] if posted else "",
    )
