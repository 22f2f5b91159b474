"""A brand's own settings from the workspace (owners only): its name,
description and clock, whether its prices include tax, the words kept out of
its chats, where it ships and its tax rates. Every change is audited."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.db import transaction
from django.utils.translation import gettext as _

from shows.models import Brand, User
from shows.services import audit, moderation
from shows.services.brand_shows import ShowInputError
from shows.services.workspace import Capability, require

NAME_MAX = 120
DESCRIPTION_MAX = 2000


@cache
def time_zones() -> list[str]:
    """The IANA zones a brand may choose, sorted."""
    skipped = ("Etc/", "SystemV/", "posix/", "right/")
    named = (z for z in zoneinfo.available_timezones() if "/" in z)
    return [*sorted(z for z in named if not z.startswith(skipped)), "UTC"]


@dataclass(frozen=True)
class BrandInput:
    name: str
    description: str
    time_zone: str
    prices_include_tax: bool
    blocked_words: Iterable[str] = ()


def brand_settings_save(*, user: User, brand: Brand, data: BrandInput) -> Brand:
    """Save the brand's settings. Raises ``ShowInputError`` with a message per
    field (nothing is saved then)."""
    require(user, brand, Capability.SETTINGS_MANAGE)
    errors: dict[str, str] = {}
    name = data.name.strip()
    if not name:
        errors["name"] = _("Give the brand a name.")
    elif len(name) > NAME_MAX:
        errors["name"] = _("At most %(limit)s characters.") % {"limit": NAME_MAX}
    if len(data.description) > DESCRIPTION_MAX:
        errors["description"] = _("At most %(limit)s characters.") % {
            "limit": DESCRIPTION_MAX
        }
    if data.time_zone not in time_zones():
        errors["time_zone"] = _("Choose a time zone from the list.")
    words = [w.strip() for w in data.blocked_words if w.strip()]
    if any(len(w) > 60 for w in words):
        errors["blocked_words"] = _("Each word or phrase has at most 60 characters.")
    if errors:
        raise ShowInputError(errors)
    before = {
        "name": brand.name,
        "time_zone": brand.time_zone,
        "prices_include_tax": brand.prices_include_tax,
    }
    with transaction.atomic():
        Brand.objects.filter(pk=brand.pk).update(
            name=name,
            description=data.description.strip(),
            time_zone=data.time_zone,
            prices_include_tax=data.prices_include_tax,
        )
        moderation.blocked_words_set(brand=brand, words=words)
        brand.refresh_from_db()
        audit.audit_record(
            brand=brand,
            actor=user,
            action="brand.settings",
            target=brand.name,
            before=before,
            after={
                "name": brand.name,
                "time_zone": brand.time_zone,
                "prices_include_tax": brand.prices_include_tax,
            },
            blocked_words=len(words),
        )
    return brand


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
    from checkout.services import delivery

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
    from checkout.services import delivery

    require(user, brand, Capability.SETTINGS_MANAGE)
    rate = delivery.tax_rate_set(brand=brand, country=country, rate_bp=rate_bp)
    audit.audit_record(
        brand=brand,
        actor=user,
        action="brand.tax",
        target=rate.country or "*",
        after={"rate_bp": rate.rate_bp},
    )
