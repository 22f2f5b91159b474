"""Prices in the viewer's locale (Babel): ``{% money price_minor currency %}``,
and ``{% money_formats lineup as formats %}`` for the page's scripts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from babel.numbers import (
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    parse_pattern,
)
from django import template

from checkout.money import Money, babel_locale

register = template.Library()


def format_money(amount_minor: int, currency: str, language: str | None = None) -> str:
    """Format integer minor units of ``currency`` for ``language`` (default: the
    active language), e.g. ``14900, "EUR", "de"`` → ``149,00 €``."""
    return Money(amount_minor, currency).format(language)


def money_format(currency: str, language: str | None = None) -> dict[str, Any]:
    """How ``language`` writes amounts of ``currency``, from Babel's locale
    data, for scripts that show amounts the server has not formatted (a total
    for a chosen quantity, a sale price that arrives live). Browsers' ``Intl``
    lacks some of our languages (Chromium formats Frisian as US English)."""
    locale = babel_locale(language)
    pattern = parse_pattern(locale.currency_formats["standard"].pattern)
    symbol = get_currency_symbol(currency, locale)
    return {
        "prefix": pattern.prefix[0].replace("¤", symbol),
        "suffix": pattern.suffix[0].replace("¤", symbol),
        "decimal": get_decimal_symbol(locale),
        "group": get_group_symbol(locale),
        "grouping": list(pattern.grouping),
        "digits": get_currency_precision(currency),
    }


@register.simple_tag
def money(amount_minor: int, currency: str) -> str:
    return format_money(amount_minor, currency)


@register.simple_tag
def money_formats(lineup: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """``money_format`` for each currency of a show's line-up."""
    currencies = {
        variant.currency for item in lineup for variant in item.product.variants.all()
    }
    return {currency: money_format(currency) for currency in sorted(currencies)}
