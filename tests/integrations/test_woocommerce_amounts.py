"""WooCommerce's amounts, read with Decimal's own handling of surrounding whitespace: the same
values as before, and the same refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.connectors.woocommerce_mapping import money


@pytest.mark.parametrize(
    "value, expected",
    [
        ("29.35", "29.35"),
        (" 29.35\n", "29.35"),
        ("\u00a012.00\u2003", "12.00"),
        ("1e3", "1E+3"),
        ("", "0"),
        (None, "0"),
        (12, "12"),
        (0.1, "0.1"),
    ],
)
def test_amounts_read_as_their_text_says(value, expected):
    assert money(value) == Decimal(expected)
    assert str(money(value)) == expected


@pytest.mark.parametrize("value", ["NaN", "Infinity", "abc", "  ", "1.2.3"])
def test_what_is_not_an_amount_is_refused(value):
    with pytest.raises(ValueError, match="is not an amount"):
        money(value)
