"""Money as integer minor units plus an ISO 4217 currency, never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision
from django.utils import translation


def babel_locale(language: str | None = None) -> Locale:
    """The Babel locale of a Django language code (default: the active
    language), English when Babel does not know it."""
    language = language or translation.get_language() or "en"
    try:
        return Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale("en")


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int of minor units")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError(f"“{self.currency}” is not an ISO 4217 code")
        if not self.currency.isupper():
            object.__setattr__(self, "currency", self.currency.upper())

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("Money only combines with Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency} with {other.currency}"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            raise TypeError("Money multiplies by whole numbers only")
        return Money(self.minor * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def format(self, language: str | None = None) -> str:
        """The amount for people in ``language`` (default: the active one),
        e.g. ``€149.00`` or ``149,00 €``."""
        amount = Decimal(self.minor).scaleb(-get_currency_precision(self.currency))
        return str(
            format_currency(amount, self.currency, locale=babel_locale(language))
        )

    def __str__(self) -> str:
        return self.format()
