"""Amounts as `Decimal` in the hub, and as each gateway wants them on the wire.

Stripe and Square take integer minor units (cents); a zero-decimal currency (JPY, KRW, ...) has
no minor unit, so ¥500 is 500, not 50000. Three-decimal currencies (BHD, KWD, ...) have 1,000
minor units. PayPal and Authorize.Net take decimal strings with the currency's number of places.
An amount with more places than its currency allows is refused, never rounded silently.
"""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 currencies without a minor unit, as the gateways treat them (Stripe's list).
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


class AmountError(ValueError):
    pass


def places(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_minor(amount: Decimal, currency: str) -> int:
    """¥500 → 500, $10.50 → 1050, 1.234 KWD → 1234."""
    digits = places(currency)
    scaled = Decimal(amount).scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{amount} has more decimal places than {currency.upper()} allows ({digits}).")
    if scaled <= 0:
        raise AmountError("The amount must be greater than zero.")
    return int(scaled)


def from_minor(value: int, currency: str) -> Decimal:
    return Decimal(int(value)).scaleb(-places(currency))


def to_decimal_string(amount: Decimal, currency: str) -> str:
    """$10.5 → "10.50", ¥500 → "500": PayPal's and Authorize.Net's form."""
    digits = places(currency)
    value = Decimal(amount)
    if value.scaleb(digits) != value.scaleb(digits).to_integral_value():
        raise AmountError(f"{amount} has more decimal places than {currency.upper()} allows ({digits}).")
    if value <= 0:
        raise AmountError("The amount must be greater than zero.")
    return f"{value:.{digits}f}"
