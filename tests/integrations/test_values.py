"""How every mapping reads platforms' amounts and times (integrations/connectors/values.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.connectors.values import amount, iso_time, required_time, unix_time


@pytest.mark.parametrize(
    ("given", "expected"),
    [("12.34", "12.34"), (" 12.30 ", "12.30"), (12, "12"), (12.34, "12.34"), (0.1, "0.1"), (None, "0"), ("", "0")],
)
def test_amounts_are_exact_decimals(given, expected):
    assert amount(given) == Decimal(expected)


@pytest.mark.parametrize("given", ["12,34", "NaN", "Infinity", float("nan"), "abc"])
def test_what_is_not_an_amount_is_refused(given):
    with pytest.raises(ValueError, match="is not an amount"):
        amount(given)


def test_times_are_utc():
    assert iso_time("2026-03-02T09:14:05Z") == datetime(2026, 3, 2, 9, 14, 5, tzinfo=UTC)
    assert iso_time("2026-03-02T09:14:05-05:00") == datetime(2026, 3, 2, 14, 14, 5, tzinfo=UTC)
    assert iso_time("2026-03-02T09:14:05") == datetime(2026, 3, 2, 9, 14, 5, tzinfo=UTC)  # no zone: UTC
    assert iso_time("") is None and unix_time(0) is None
    assert unix_time(1772442845) == datetime(2026, 3, 2, 9, 14, 5, tzinfo=UTC)


def test_a_required_time_that_is_missing_is_refused():
    with pytest.raises(ValueError, match="the order has no createdTime"):
        required_time({}, "createdTime")
    assert required_time({"t": 1772442845}, "t", unix_time).year == 2026
