import pytest

from checkout.money import CurrencyMismatch, Money


def test_money_adds_and_multiplies_in_one_currency():
    """Amounts of one currency add and multiply by whole numbers, exactly."""
    assert Money(8900, "EUR") * 3 + Money(100, "EUR") == Money(26800, "EUR")


def test_money_refuses_to_mix_currencies():
    """Adding euros to dollars raises instead of producing a wrong total."""
    with pytest.raises(CurrencyMismatch):
        Money(100, "EUR") + Money(100, "USD")


def test_money_refuses_floats_and_bad_codes():
    """A float amount or a non-ISO code is refused at construction."""
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ISO"):
        Money(100, "EURO")


def test_money_formats_with_the_currency_digits():
    """Yen has no minor digits; euros have two; the locale decides the format."""
    assert Money(8900, "EUR").format("en") == "€89.00"
    assert Money(8900, "EUR").format("de") == "89,00\xa0€"
    assert Money(500, "JPY").format("en") == "¥500"
