"""Square's payments, refunds and errors in the hub's terms (see square.py for the requests)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import requests

from ..money import from_minor, to_minor
from .base import GatewayPayment, GatewayRefund, PaymentStatus, RefundStatus

MAX_KEY = 45  # Square's longest idempotency key
STATUSES = {
    "COMPLETED": PaymentStatus.SUCCEEDED,
    "APPROVED": PaymentStatus.AUTHORIZED,
    "PENDING": PaymentStatus.PROCESSING,
    "FAILED": PaymentStatus.FAILED,
    "CANCELED": PaymentStatus.CANCELED,
}
CAPTURED = {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
REFUND_STATUSES = {
    "PENDING": RefundStatus.PENDING,
    "COMPLETED": RefundStatus.SUCCEEDED,
    "REJECTED": RefundStatus.FAILED,
    "FAILED": RefundStatus.FAILED,
}
# Error categories that answer about the card or the refund rather than refuse the request.
ANSWERS = {"PAYMENT_METHOD_ERROR", "REFUND_ERROR"}
DECLINES = {
    "CARD_DECLINED": "The card was declined.",
    "GENERIC_DECLINE": "The card was declined.",
    "CVV_FAILURE": "The card's security code (CVV) did not match.",
    "VERIFY_CVV_FAILURE": "The card's security code (CVV) did not match.",
    "ADDRESS_VERIFICATION_FAILURE": "The postal code did not match the card's.",
    "VERIFY_AVS_FAILURE": "The postal code did not match the card's.",
    "INSUFFICIENT_FUNDS": "The card has insufficient funds.",
    "CARD_EXPIRED": "The card has expired.",
    "CARD_DECLINED_VERIFICATION_REQUIRED": "The card's issuer wants the buyer verified (3-D Secure).",
}
# What the hub keeps of the card Square describes beside a payment.
CARD_FIELDS = {"card_brand", "last_4", "card_type", "prepaid_type"}


def square_key(key: str) -> str:
    """The hub's idempotency key as Square takes it (at most 45 characters), the same every time."""
    return key if len(key) <= MAX_KEY else hashlib.sha256(key.encode()).hexdigest()[:MAX_KEY]


def money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": to_minor(amount, currency), "currency": currency.upper()}


def amount_of(value: Any) -> Decimal | None:
    if not isinstance(value, dict) or value.get("amount") is None or not value.get("currency"):
        return None
    return from_minor(value["amount"], value["currency"])


def errors_of(data: Any) -> list[dict[str, Any]]:
    items = data.get("errors") if isinstance(data, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def describe(response: requests.Response) -> str:
    """`CODE: detail (field)` for the first few of Square's errors: the client's `Hints.describe`."""
    try:
        items = errors_of(response.json())
    except ValueError:
        return ""
    parts = []
    for item in items[:3]:
        words = f"{item.get('code', '')}: {item.get('detail') or ''}".strip(": ")
        parts.append(f"{words} ({item['field']})" if item.get("field") else words)
    return "; ".join(part for part in parts if part)


def is_answer(data: Any) -> bool:
    """Whether a refused request's body is Square's answer about the card or the refund."""
    return any(item.get("category") in ANSWERS for item in errors_of(data))


def decline(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(failure_code, failure_message) of the first error about the card, else of the first error."""
    if not errors:
        return "", ""
    first = next((item for item in errors if item.get("category") in ANSWERS), errors[0])
    code = str(first.get("code") or "")
    return code, DECLINES.get(code) or str(first.get("detail") or code.replace("_", " ").capitalize())


def without_card_data(payment: dict[str, Any]) -> dict[str, Any]:
    """The payment with its card reduced to brand, type and last four digits."""
    details = payment.get("card_details")
    if not isinstance(details, dict) or not isinstance(details.get("card"), dict):
        return payment
    card = {key: value for key, value in details["card"].items() if key in CARD_FIELDS}
    return {**payment, "card_details": {**details, "card": card}}


def to_payment(payment: dict[str, Any], errors: list[dict[str, Any]] | None = None) -> GatewayPayment:
    """A Square Payment; `errors` are those of the answer that carried it (a decline's)."""
    amount = amount_of(payment.get("amount_money"))
    refunded = amount_of(payment.get("refunded_money")) or None
    status = STATUSES.get(str(payment.get("status")), PaymentStatus.PROCESSING)
    if status == PaymentStatus.SUCCEEDED and refunded and amount is not None:
        status = PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED
    result = GatewayPayment(
        status=status,
        gateway_id=str(payment.get("id") or ""),
        amount=amount,
        currency=str((payment.get("amount_money") or {}).get("currency") or ""),
        amount_captured=amount if status in CAPTURED else None,
        amount_refunded=refunded,
        extra={key: payment[key] for key in ("order_id", "receipt_url") if payment.get(key)},
        raw=without_card_data(payment),
    )
    if status == PaymentStatus.FAILED:
        result.failure_code, result.failure_message = decline(errors or errors_of(payment.get("card_details")))
    return result


def declined_payment(data: dict[str, Any]) -> GatewayPayment:
    """A decline answered without a payment object: what Square said, and no id."""
    code, message = decline(errors_of(data))
    return GatewayPayment(
        status=PaymentStatus.FAILED, gateway_id="", failure_code=code, failure_message=message, raw=data
    )


def to_refund(data: dict[str, Any], requested: Decimal) -> GatewayRefund:
    """RefundPayment's answer: the refund, or a refund Square declined (its errors)."""
    refund = data.get("refund")
    if not isinstance(refund, dict):
        code, message = decline(errors_of(data))
        return GatewayRefund(
            status=RefundStatus.FAILED,
            gateway_id="",
            amount=requested,
            failure_code=code,
            failure_message=message,
            raw=data,
        )
    return GatewayRefund(
        status=REFUND_STATUSES.get(str(refund.get("status")), RefundStatus.PENDING),
        gateway_id=str(refund.get("id") or ""),
        amount=amount_of(refund.get("amount_money")),
        raw=refund,
    )
