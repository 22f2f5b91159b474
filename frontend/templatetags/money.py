"""``{% money price_minor currency %}``: a price in the viewer's locale (Babel)."""

from __future__ import annotations

from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision
from django import template
from django.utils import translation

register = template.Library()


def format_money(amount_minor: int, currency: str, language: str | None = None) -> str:
    """Format integer minor units of ``currency`` for ``language`` (default: the
    active language), e.g. ``14900, "EUR", "de"`` → ``149,00 €``."""
    language = language or translation.get_language() or "en"
    try:
        locale = Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        locale = Locale("en")
    amount = Decimal(amount_minor).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=locale)


@register.simple_tag
def money(amount_minor: int, currency: str) -> str:
    return format_money(amount_minor, currency)
