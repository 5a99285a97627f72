"""Values as platforms write them, read the same way by every mapping: amounts (strings, numbers,
floats) as exact `Decimal`s, and ISO 8601 or unix times as aware UTC datetimes. A value that is
not what it claims raises ValueError, which quarantines the record (connectors.base.parse_all)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO = Decimal("0")


def amount(value: Any) -> Decimal:
    """ "12.34", 12, 12.34 → Decimal; empty → 0. A float is read by its shortest repr (12.34, not
    12.339999…); NaN and infinities are refused."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, float):
        value = repr(value)
    try:
        # Decimal strips surrounding whitespace itself.
        number = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ValueError(f"“{value}” is not an amount") from None
    if not number.is_finite():
        raise ValueError(f"“{value}” is not an amount")
    return number


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time ("Z" allowed) in UTC; a time without a zone is taken as UTC; empty → None."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def unix_time(value: Any) -> datetime | None:
    if value in (None, "", 0):
        return None
    return datetime.fromtimestamp(int(value), UTC)


def required_time(payload: dict[str, Any], key: str, read: Callable[[Any], datetime | None] = iso_time) -> datetime:
    moment = read(payload.get(key))
    if moment is None:
        raise ValueError(f"the order has no {key}")
    return moment
