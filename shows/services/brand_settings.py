"""A brand's own settings from the workspace (owners only): its name,
description and clock, whether its prices include tax and the words kept out
of its chats (where it ships and its tax rates are checkout's:
``checkout/services/brand_delivery.py``). Every change is audited."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from shows import images
from shows.models import Brand, User
from shows.origins import parse_origins
from shows.services import audit, catalog, moderation
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
    accent_colour: str = ""


# White text on the colour, and the colour as text on white, must both reach
# WCAG AA for normal text.
MIN_CONTRAST = 4.5


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        value = int(hex_pair, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(colour: str) -> float:
    """The WCAG contrast ratio of ``#rrggbb`` against white."""
    return 1.05 / (_luminance(colour) + 0.05)


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
    accent = data.accent_colour.strip().lower()
    if accent and not re.fullmatch(r"#[0-9a-f]{6}", accent):
        errors["accent_colour"] = _("Write the colour as # and six hex digits.")
    elif accent and contrast_with_white(accent) < MIN_CONTRAST:
        errors["accent_colour"] = _(
            "Too light to read white text on (contrast %(ratio).1f:1, at least "
            "4.5:1 is needed): choose a darker colour."
        ) % {"ratio": contrast_with_white(accent)}
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
            accent_colour=accent,
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


EMBED_ORIGINS_MAX = 20


def brand_embed_origins_set(*, user: User, brand: Brand, text: str) -> Brand:
    """Set the origins whose pages may frame the brand's embedded shows, one
    a line in ``text`` (``https://shop.example``; empty: none may). Raises
    ``ShowInputError`` on ``embed_origins`` naming each entry that is not a
    bare origin: a path or wildcard would let unnamed pages frame checkout."""
    require(user, brand, Capability.SETTINGS_MANAGE)
    try:
        origins = parse_origins(text)
    except ValidationError as error:
        raise ShowInputError({"embed_origins": " ".join(error.messages)}) from error
    if len(origins) > EMBED_ORIGINS_MAX:
        raise ShowInputError(
            {
                "embed_origins": _("At most %(limit)s origins.")
                % {"limit": EMBED_ORIGINS_MAX}
            }
        )
    before = list(brand.embed_origins)
    with transaction.atomic():
        Brand.objects.filter(pk=brand.pk).update(embed_origins=origins)
        brand.refresh_from_db()
        audit.audit_record(
            brand=brand,
            actor=user,
            action="brand.embed_origins",
            target=brand.name,
            before={"embed_origins": before},
            after={"embed_origins": origins},
        )
    return brand


def brand_logo_set(*, user: User, brand: Brand, upload: catalog.ImageUpload) -> Brand:
    """Give the brand a logo (checked and thumbnailed at upload). Raises
    ``ImageInvalid``."""
    require(user, brand, Capability.SETTINGS_MANAGE)
    replaced = images.image_store(
        brand.logo, upload.file, size=upload.size, folder=f"{brand.pk}", kinds=("logo",)
    )
    brand.save(update_fields=["logo"])
    transaction.on_commit(lambda: images.image_forget(brand.logo, replaced))
    audit.audit_record(brand=brand, actor=user, action="brand.logo", target=brand.name)
    return brand
