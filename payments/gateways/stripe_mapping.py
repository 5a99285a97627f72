"""Stripe's objects in the hub's words: PaymentIntents and Refunds as `GatewayPayment` and
`GatewayRefund`, the hub's charge as PaymentIntent parameters, and a refund's reason in Stripe's
enum. Plain dicts in and out (Stripe's JSON), so a webhook's `data.object` maps the same way.

PaymentIntent statuses
    requires_payment_method   failed when a confirmation was declined (`last_payment_error`),
                              otherwise requires_action: the customer's browser has to supply
                              a payment method with the client secret
    requires_confirmation     requires_action (the browser confirms)
    requires_action           requires_action (3-D Secure and the like), with the client secret
                              and, for a redirect, its address as `approval_url`
    processing                processing
    requires_capture          authorized
    succeeded                 succeeded; refunded, partially refunded or disputed when the latest
                              charge (expanded by `retrieve`) says so
    canceled                  canceled
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from payments.money import from_minor, to_minor

from .base import ChargeRequest, GatewayPayment, GatewayRefund, PaymentStatus, RefundRequest, RefundStatus

INTENT_STATUSES = {
    "requires_payment_method": PaymentStatus.REQUIRES_ACTION,
    "requires_confirmation": PaymentStatus.REQUIRES_ACTION,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.AUTHORIZED,
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELED,
}
REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}
# Stripe takes three refund reasons; a few ways of saying them map there, any other reason goes
# into the refund's metadata, where it shows in the Dashboard.
REFUND_REASONS = {
    "duplicate": "duplicate",
    "fraudulent": "fraudulent",
    "fraud": "fraudulent",
    "requested_by_customer": "requested_by_customer",
    "customer_request": "requested_by_customer",
    "customer_requested": "requested_by_customer",
}
# Kept out of `raw`: secrets for the customer's browser (the client secret, also inside
# `next_action`'s addresses), payment method ids and anything describing the card (PaymentMethod
# and Charge objects inside an intent or an error).
STRIPPED = frozenset(
    {
        "client_secret",
        "next_action",
        "payment_method",
        "payment_method_details",
        "billing_details",
        "source",
        "card",
        "fingerprint",
        "last4",
        "exp_month",
        "exp_year",
    }
)


def charge_params(request: ChargeRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": to_minor(request.amount, request.currency),
        "currency": request.currency.lower(),
    }
    if request.payment_method:
        # A payment method given means the hub confirms now; the dynamic payment methods of the
        # Dashboard are for the Payment Element, which brings its own.
        params["payment_method"] = request.payment_method
        params["confirm"] = True
        params["automatic_payment_methods"] = {"enabled": False}
        if request.return_url:
            params["return_url"] = request.return_url  # where 3-D Secure sends the customer back
    if not request.capture:
        params["capture_method"] = "manual"
    if "@" in request.customer:
        params["receipt_email"] = request.customer
    elif request.customer:
        params["customer"] = request.customer
    if request.description:
        params["description"] = request.description
    if request.metadata:
        params["metadata"] = {str(k): str(v) for k, v in request.metadata.items()}
    return params


def refund_params(request: RefundRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "payment_intent": request.gateway_payment_id,
        "amount": to_minor(request.amount, request.currency),
    }
    reason = request.reason.strip()
    known = REFUND_REASONS.get(reason.lower().replace(" ", "_").replace("-", "_"))
    if known:
        params["reason"] = known
    elif reason:
        params["metadata"] = {"reason": reason[:500]}  # Stripe's limit for a metadata value
    return params


def payment_from_intent(intent: dict[str, Any]) -> GatewayPayment:
    status = intent.get("status") or ""
    error = intent.get("last_payment_error") or {}
    mapped = INTENT_STATUSES.get(status, PaymentStatus.PROCESSING)  # a status Stripe adds later: not final
    if status == "requires_payment_method" and error:
        mapped = PaymentStatus.FAILED
    currency = (intent.get("currency") or "").upper()
    payment = GatewayPayment(
        status=mapped,
        gateway_id=intent.get("id") or "",
        amount=_amount(intent.get("amount"), currency),
        currency=currency,
        amount_captured=_amount(intent.get("amount_received"), currency),
        raw=stripped(intent),
    )
    if mapped == PaymentStatus.FAILED:
        payment.failure_code = error.get("decline_code") or error.get("code") or ""
        payment.failure_message = error.get("message") or ""
    if mapped == PaymentStatus.CANCELED:
        payment.failure_code = intent.get("cancellation_reason") or ""
    if mapped == PaymentStatus.REQUIRES_ACTION:
        payment.client_secret = intent.get("client_secret") or ""
        redirect = (intent.get("next_action") or {}).get("redirect_to_url") or {}
        payment.approval_url = redirect.get("url") or ""
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):  # expanded
        payment.extra["latest_charge"] = charge.get("id") or ""
        payment.amount_refunded = _amount(charge.get("amount_refunded"), currency)
        if mapped == PaymentStatus.SUCCEEDED:
            if charge.get("disputed"):
                payment.status = PaymentStatus.DISPUTED
            elif charge.get("refunded"):
                payment.status = PaymentStatus.REFUNDED
            elif charge.get("amount_refunded"):
                payment.status = PaymentStatus.PARTIALLY_REFUNDED
    elif charge:
        payment.extra["latest_charge"] = charge
    return payment


def declined_payment(error_body: dict[str, Any]) -> GatewayPayment:
    """A card error (402) as the failed payment it is. Stripe puts the declined PaymentIntent in the
    error; its `last_payment_error` is the same error."""
    intent = error_body.get("payment_intent")
    if isinstance(intent, dict) and intent.get("id"):
        payment = payment_from_intent({**intent, "last_payment_error": intent.get("last_payment_error") or error_body})
        payment.status = PaymentStatus.FAILED
        payment.client_secret = payment.approval_url = ""
        return payment
    return GatewayPayment(
        status=PaymentStatus.FAILED,
        gateway_id="",
        failure_code=error_body.get("decline_code") or error_body.get("code") or "",
        failure_message=error_body.get("message") or "",
        raw=stripped(error_body),
    )


def refund_from_stripe(refund: dict[str, Any]) -> GatewayRefund:
    currency = (refund.get("currency") or "").upper()
    status = REFUND_STATUSES.get(refund.get("status") or "", RefundStatus.PENDING)
    result = GatewayRefund(
        status=status,
        gateway_id=refund.get("id") or "",
        amount=_amount(refund.get("amount"), currency),
        raw=stripped(refund),
    )
    if status == RefundStatus.FAILED:
        # `failure_reason`: lost_or_stolen_card, expired_or_canceled_card, declined, ...
        result.failure_code = refund.get("failure_reason") or refund.get("status") or ""
        result.failure_message = f"Stripe did not refund: {result.failure_code.replace('_', ' ')}."
    return result


def stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stripped(v) for k, v in value.items() if k not in STRIPPED}
    if isinstance(value, list):
        return [stripped(v) for v in value]
    return value


def _amount(value: Any, currency: str) -> Decimal | None:
    if value is None or not currency:
        return None
    return from_minor(int(value), currency)
