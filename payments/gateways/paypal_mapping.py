"""PayPal's orders, captures and refunds as the hub's `GatewayPayment` and `GatewayRefund`.

An order's status says where the payer is: CREATED and PAYER_ACTION_REQUIRED wait for the payer's
approval (requires_action, with the `payer-action` or `approve` link); APPROVED waits for the
merchant, who captures it (authorized: approved, no money taken yet); VOIDED is cancelled. Once
COMPLETED, the money is in its first purchase unit's payments: the latest capture (or, for an
order created to be authorised, its authorisation) gives the status, with the processor's response
code when a card was declined, and the captures and refunds give the amounts.
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import GatewayPayment, GatewayRefund, PaymentStatus, RefundStatus

WAITING_FOR_PAYER = {"CREATED", "PAYER_ACTION_REQUIRED"}
CAPTURE_STATUS = {
    "COMPLETED": PaymentStatus.SUCCEEDED,
    "PENDING": PaymentStatus.PROCESSING,
    "DECLINED": PaymentStatus.FAILED,
    "FAILED": PaymentStatus.FAILED,
    "PARTIALLY_REFUNDED": PaymentStatus.PARTIALLY_REFUNDED,
    "REFUNDED": PaymentStatus.REFUNDED,
}
CAPTURED = {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"}
AUTHORIZATION_STATUS = {
    "CREATED": PaymentStatus.AUTHORIZED,
    "PARTIALLY_CAPTURED": PaymentStatus.AUTHORIZED,
    "PENDING": PaymentStatus.PROCESSING,
    "DENIED": PaymentStatus.FAILED,
    "VOIDED": PaymentStatus.CANCELED,
    "EXPIRED": PaymentStatus.CANCELED,
    "CAPTURED": PaymentStatus.SUCCEEDED,
}
CAPTURABLE = {"CREATED", "PARTIALLY_CAPTURED"}
REFUND_STATUS = {
    "COMPLETED": RefundStatus.SUCCEEDED,
    "PENDING": RefundStatus.PENDING,
    "FAILED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.FAILED,
}
# What the commonest of PayPal's processor response codes mean, for the person reading a decline.
PROCESSOR_CODES = {
    "0500": "the card issuer declined it (do not honour)",
    "5100": "the card issuer declined it",
    "5110": "the card's security code did not match",
    "5120": "insufficient funds",
    "5400": "the card has expired",
    "9500": "suspected fraud",
}


def money(value: Any) -> tuple[Decimal | None, str]:
    """PayPal's `{currency_code, value}` as an amount and its currency."""
    if not isinstance(value, dict):
        return None, ""
    try:
        amount = Decimal(str(value.get("value")))
    except (InvalidOperation, ValueError):
        amount = None
    return amount, str(value.get("currency_code") or "")


def dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def first_unit(order: dict[str, Any]) -> dict[str, Any]:
    return next(iter(dicts(order.get("purchase_units"))), {})


def payments_of(order: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    payments = first_unit(order).get("payments")
    return dicts(payments.get(kind)) if isinstance(payments, dict) else []


def approval_url(order: dict[str, Any]) -> str:
    links = {link.get("rel"): link.get("href") for link in dicts(order.get("links"))}
    return str(links.get("payer-action") or links.get("approve") or "")


def open_authorization(order: dict[str, Any]) -> dict[str, Any] | None:
    """The order's authorisation that can still be captured, if there is one."""
    return next((a for a in reversed(payments_of(order, "authorizations")) if a.get("status") in CAPTURABLE), None)


def total(items: list[dict[str, Any]], statuses: set[str]) -> Decimal | None:
    amounts = [money(item.get("amount"))[0] for item in items if item.get("status") in statuses]
    amounts = [amount for amount in amounts if amount is not None]
    return sum(amounts, Decimal(0)) if amounts else None


def from_order(order: dict[str, Any]) -> GatewayPayment:
    amount, currency = money(first_unit(order).get("amount"))
    payment = GatewayPayment(
        status=PaymentStatus.PROCESSING,
        gateway_id=str(order.get("id") or ""),
        amount=amount,
        currency=currency,
        raw=stripped(order),
    )
    captures = payments_of(order, "captures")
    authorizations = payments_of(order, "authorizations")
    if captures:
        payment.extra["capture_id"] = str(captures[-1].get("id") or "")
    if authorizations:
        payment.extra["authorization_id"] = str(authorizations[-1].get("id") or "")
    status = order.get("status")
    if status in WAITING_FOR_PAYER:
        payment.status = PaymentStatus.REQUIRES_ACTION
        payment.approval_url = approval_url(order)
    elif status == "APPROVED":
        payment.status = PaymentStatus.AUTHORIZED
    elif status == "VOIDED":
        payment.status = PaymentStatus.CANCELED
    elif captures:
        with_capture(payment, captures[-1])
        payment.amount_captured = total(captures, CAPTURED)
        payment.amount_refunded = total(payments_of(order, "refunds"), {"COMPLETED"})
    elif authorizations:
        latest = authorizations[-1]
        payment.status = AUTHORIZATION_STATUS.get(str(latest.get("status")), PaymentStatus.PROCESSING)
        if payment.status == PaymentStatus.FAILED:
            payment.failure_code = str(latest.get("status") or "")
            payment.failure_message = "PayPal denied the authorisation."
    return payment


def from_capture(capture: dict[str, Any], order: dict[str, Any]) -> GatewayPayment:
    """The payment after its authorisation was captured: the order as it stood, with the capture."""
    payment = from_order(order)
    payment.raw = stripped(capture)
    payment.extra["capture_id"] = str(capture.get("id") or "")
    with_capture(payment, capture)
    others = [c for c in payments_of(order, "captures") if c.get("id") != capture.get("id")]
    earlier = total(others, CAPTURED) or Decimal(0)
    this = money(capture.get("amount"))[0] if capture.get("status") in CAPTURED else None
    payment.amount_captured = earlier + this if this is not None else (earlier or None)
    return payment


def with_capture(payment: GatewayPayment, capture: dict[str, Any]) -> None:
    status = str(capture.get("status") or "")
    payment.status = CAPTURE_STATUS.get(status, PaymentStatus.PROCESSING)
    if payment.status != PaymentStatus.FAILED:
        return
    response = capture.get("processor_response") if isinstance(capture.get("processor_response"), dict) else {}
    details = capture.get("status_details") if isinstance(capture.get("status_details"), dict) else {}
    code = str(response.get("response_code") or details.get("reason") or status)
    meaning = PROCESSOR_CODES.get(code)
    payment.failure_code = code
    payment.failure_message = f"PayPal declined the payment: {meaning}." if meaning else "PayPal declined the payment."


def from_refund(refund: dict[str, Any]) -> GatewayRefund:
    status = str(refund.get("status") or "")
    result = GatewayRefund(
        status=REFUND_STATUS.get(status, RefundStatus.PENDING),
        gateway_id=str(refund.get("id") or ""),
        amount=money(refund.get("amount"))[0],
        raw=refund,
    )
    if result.status == RefundStatus.FAILED:
        details = refund.get("status_details") if isinstance(refund.get("status_details"), dict) else {}
        result.failure_code = str(details.get("reason") or status)
        result.failure_message = f"PayPal did not complete the refund ({status.lower()})."
    return result


def stripped(order: dict[str, Any]) -> dict[str, Any]:
    """The answer without a card's details beyond its brand, type and last digits."""
    source = order.get("payment_source")
    if not isinstance(source, dict) or not isinstance(source.get("card"), dict):
        return order
    order = copy.deepcopy(order)
    card = order["payment_source"]["card"]
    order["payment_source"]["card"] = {k: card[k] for k in ("brand", "type", "last_digits") if k in card}
    return order
