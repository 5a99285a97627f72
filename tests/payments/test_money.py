"""Amounts in each gateway's form: minor units (zero- and three-decimal currencies too) and decimal strings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.money import AmountError, from_minor, to_decimal_string, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("10.50", "usd", 1050), ("500", "JPY", 500), ("1000", "KRW", 1000), ("1.234", "KWD", 1234), ("0.01", "EUR", 1)],
)
def test_minor_units(amount, currency, minor):
    assert to_minor(Decimal(amount), currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(("amount", "currency"), [("500.5", "JPY"), ("10.005", "USD"), ("1.2345", "KWD")])
def test_more_places_than_the_currency_has_are_refused_not_rounded(amount, currency):
    with pytest.raises(AmountError, match="decimal places"):
        to_minor(Decimal(amount), currency)
    with pytest.raises(AmountError, match="decimal places"):
        to_decimal_string(Decimal(amount), currency)


@pytest.mark.parametrize("amount", ["0", "-1.00"])
def test_an_amount_must_be_positive(amount):
    with pytest.raises(AmountError, match="greater than zero"):
        to_minor(Decimal(amount), "USD")


def test_decimal_strings():
    assert to_decimal_string(Decimal("10.5"), "USD") == "10.50"
    assert to_decimal_string(Decimal("500"), "JPY") == "500"
    assert to_decimal_string(Decimal("1.2"), "BHD") == "1.200"
