"""A brand's delivery settings from the workspace (owners only): its shipping
zones and tax rates, through checkout's delivery rules, each change audited
(the brand's other settings are ``shows/services/brand_settings.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from checkout.services import delivery
from shows.models import Brand, User
from shows.services import audit
from shows.services.workspace import Capability, require


def shipping_zone_save(
    *,
    user: User,
    brand: Brand,
    name: str,
    countries: Iterable[str],
    rate_minor: int,
    currency: str,
    free_from_minor: int | None,
) -> None:
    """Create or change one of the brand's shipping zones (checkout's rules:
    ``DeliverySettingsInvalid`` for a bad one)."""
    require(user, brand, Capability.SETTINGS_MANAGE)
    zone = delivery.shipping_zone_set(
        brand=brand,
        name=name.strip(),
        countries=countries,
        rate_minor=rate_minor,
        currency=currency,
        free_from_minor=free_from_minor,
    )
    audit.audit_record(
        brand=brand,
        actor=user,
        action="brand.shipping",
        target=zone.name,
        after={
            "countries": sorted(zone.country_codes),
            "rate_minor": zone.rate_minor,
            "currency": zone.currency,
            "free_from_minor": zone.free_from_minor,
        },
    )


def tax_rate_save(*, user: User, brand: Brand, country: str, rate_bp: int) -> None:
    """Set the brand's tax rate for a country, in basis points (19 % = 1900)."""
    require(user, brand, Capability.SETTINGS_MANAGE)
    rate = delivery.tax_rate_set(brand=brand, country=country, rate_bp=rate_bp)
    audit.audit_record(
        brand=brand,
        actor=user,
        action="brand.tax",
        target=rate.country or "*",
        after={"rate_bp": rate.rate_bp},
    )
