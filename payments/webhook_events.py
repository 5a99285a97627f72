"""What each gateway's webhook event says about a payment, read into one `Change`.

One small reader per event type, from the shapes the gateways document:

- Stripe: the event's `data.object` is a PaymentIntent (`payment_intent.*`), a Charge
  (`charge.refunded`, whose `amount_refunded` is the total so far) or a Dispute; amounts in minor
  units; the event's `created` is its time.
- PayPal: `resource` is a capture (`PAYMENT.CAPTURE.*`, naming its order in
  `supplementary_data.related_ids`), a refund (`PAYMENT.CAPTURE.REFUNDED`: its capture is the
  `up` link, the total refunded so far in `seller_payable_breakdown`) or a dispute (its
  `disputed_transactions` name the captures); amounts as decimal strings.
- Square: `data.object.payment` (status APPROVED, COMPLETED, CANCELED, FAILED; `refunded_money`
  the total) or `data.object.refund` (its `payment_id`); minor units; `updated_at`.
- Authorize.Net: `payload.id` is the transaction id and `payload.authAmount` its amount (decimal);
  `responseCode` 1 approved, 2 declined, 3 error, 4 held for review; `eventDate`. A refund is a
  transaction of its own, so only a refund the hub made (known by its id) can be placed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from webhooks.receivers.common import parse_time

from .gateways.base import PaymentStatus, RefundStatus
from .money import from_minor


@dataclass
class RefundChange:
    gateway_id: str
    status: str  # a RefundStatus value
    amount: Decimal | None = None


@dataclass
class Change:
    ids: list[str]  # the gateway's ids that may name the payment (its gateway_id or gateway_reference)
    at: datetime | None = None  # the gateway's time of this state
    status: str | None = None  # a PaymentStatus value to move to
    amount_captured: Decimal | None = None
    refunded_total: Decimal | None = None  # all refunded so far, as the gateway reports it
    refund: RefundChange | None = None  # one refund, by its own gateway id
    failure_code: str = ""
    failure_message: str = ""
    reference: str = ""  # a second id of the payment to keep (PayPal's capture, Stripe's charge)
    hub_payment_ids: list[str] = field(default_factory=list)  # the hub's uuid, where the gateway echoes it
    voided_id: str = ""  # Authorize.Net: a void names a payment or a refund transaction


Reader = Callable[[dict[str, Any]], Change]


def text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value)


def decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def minor(money: Any) -> Decimal | None:
    """Square's and Stripe's {"amount": 1050, "currency": "USD"} → 10.50."""
    if not isinstance(money, dict) or money.get("amount") is None:
        return None
    return from_minor(int(money["amount"]), str(money.get("currency") or ""))


# --- Stripe ------------------------------------------------------------------------------------------


def _stripe(body: dict) -> tuple[dict, datetime | None, str]:
    obj = body["data"]["object"]
    created = body.get("created")
    at = datetime.fromtimestamp(int(created), tz=UTC) if created is not None else None
    return obj, at, text(obj.get("currency")).upper()


def stripe_intent(status: str) -> Reader:
    def read(body: dict) -> Change:
        intent, at, currency = _stripe(body)
        change = Change(
            ids=[text(intent["id"])],
            at=at,
            status=status,
            reference=text(intent.get("latest_charge")),
            hub_payment_ids=[text((intent.get("metadata") or {}).get("hub_payment_id"))],
        )
        if status == PaymentStatus.SUCCEEDED and intent.get("amount_received") is not None:
            change.amount_captured = from_minor(int(intent["amount_received"]), currency)
        if status == PaymentStatus.FAILED:
            error = intent.get("last_payment_error") or {}
            change.failure_code = text(error.get("decline_code") or error.get("code"))
            change.failure_message = text(error.get("message"))
        return change

    return read


def stripe_charge_refunded(body: dict) -> Change:
    charge, at, currency = _stripe(body)
    return Change(
        ids=[text(charge.get("payment_intent")), text(charge["id"])],
        at=at,
        amount_captured=from_minor(int(charge["amount_captured"]), currency)
        if charge.get("amount_captured") is not None
        else None,
        refunded_total=from_minor(int(charge["amount_refunded"]), currency),
        reference=text(charge["id"]),
        hub_payment_ids=[text((charge.get("metadata") or {}).get("hub_payment_id"))],
    )


def stripe_dispute(body: dict) -> Change:
    dispute, at, _ = _stripe(body)
    return Change(
        ids=[text(dispute.get("payment_intent")), text(dispute.get("charge"))],
        at=at,
        status=PaymentStatus.DISPUTED,
        failure_code=text(dispute.get("reason")),
    )


# --- PayPal ------------------------------------------------------------------------------------------


def _paypal(body: dict) -> tuple[dict, datetime | None]:
    resource = body["resource"]
    return resource, parse_time(resource.get("update_time")) or parse_time(body.get("create_time"))


def paypal_capture(status: str) -> Reader:
    def read(body: dict) -> Change:
        capture, at = _paypal(body)
        related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
        change = Change(
            ids=[text(related.get("order_id")), text(capture["id"])],
            at=at,
            status=status,
            reference=text(capture["id"]),
            hub_payment_ids=[text(capture.get("custom_id")), text(capture.get("invoice_id"))],
        )
        if status == PaymentStatus.SUCCEEDED:
            change.amount_captured = decimal((capture.get("amount") or {}).get("value"))
        if status == PaymentStatus.FAILED:
            change.failure_code = "denied"
            change.failure_message = text((capture.get("status_details") or {}).get("reason"))
        return change

    return read


PAYPAL_REFUND_STATUS = {"COMPLETED": RefundStatus.SUCCEEDED, "PENDING": RefundStatus.PENDING}


def paypal_refund(body: dict) -> Change:
    refund, at = _paypal(body)
    up = next((link.get("href", "") for link in refund.get("links") or [] if link.get("rel") == "up"), "")
    status = PAYPAL_REFUND_STATUS.get(text(refund.get("status")), RefundStatus.FAILED)
    total = ((refund.get("seller_payable_breakdown") or {}).get("total_refunded_amount") or {}).get("value")
    return Change(
        ids=[up.rstrip("/").rsplit("/", 1)[-1]] if up else [],
        at=at,
        refunded_total=decimal(total) if status == RefundStatus.SUCCEEDED else None,
        refund=RefundChange(text(refund["id"]), status, decimal((refund.get("amount") or {}).get("value"))),
        hub_payment_ids=[text(refund.get("custom_id")), text(refund.get("invoice_id"))],
    )


def paypal_dispute(body: dict) -> Change:
    dispute = body["resource"]
    at = parse_time(dispute.get("create_time")) or parse_time(body.get("create_time"))
    transactions = dispute.get("disputed_transactions") or []
    return Change(
        ids=[text(t.get("seller_transaction_id")) for t in transactions if isinstance(t, dict)],
        at=at,
        status=PaymentStatus.DISPUTED,
        failure_code=text(dispute.get("reason")).lower(),
    )


# --- Square ------------------------------------------------------------------------------------------

SQUARE_PAYMENT_STATUS = {
    "APPROVED": PaymentStatus.AUTHORIZED,
    "PENDING": PaymentStatus.PROCESSING,
    "COMPLETED": PaymentStatus.SUCCEEDED,
    "CANCELED": PaymentStatus.CANCELED,
    "FAILED": PaymentStatus.FAILED,
}
SQUARE_REFUND_STATUS = {
    "PENDING": RefundStatus.PENDING,
    "COMPLETED": RefundStatus.SUCCEEDED,
    "REJECTED": RefundStatus.FAILED,
    "FAILED": RefundStatus.FAILED,
}


def square_payment(body: dict) -> Change:
    payment = body["data"]["object"]["payment"]
    status = SQUARE_PAYMENT_STATUS.get(text(payment.get("status")))
    change = Change(
        ids=[text(payment["id"])],
        at=parse_time(payment.get("updated_at")) or parse_time(body.get("created_at")),
        status=status,
        refunded_total=minor(payment.get("refunded_money")),
        hub_payment_ids=[text(payment.get("reference_id"))],
    )
    if status == PaymentStatus.SUCCEEDED:
        change.amount_captured = minor(payment.get("total_money")) or minor(payment.get("amount_money"))
    if status == PaymentStatus.FAILED:
        change.failure_code = "failed"
    return change


def square_refund(body: dict) -> Change:
    refund = body["data"]["object"]["refund"]
    status = SQUARE_REFUND_STATUS.get(text(refund.get("status")), RefundStatus.PENDING)
    return Change(
        ids=[text(refund["payment_id"])],
        at=parse_time(refund.get("updated_at")) or parse_time(body.get("created_at")),
        refund=RefundChange(text(refund["id"]), status, minor(refund.get("amount_money"))),
    )


# --- Authorize.Net -----------------------------------------------------------------------------------

ANET_DECLINED = {2: "declined", 3: "error"}


def _anet(body: dict) -> tuple[dict, str, datetime | None]:
    payload = body["payload"]
    return payload, text(payload["id"]), parse_time(body.get("eventDate"))


def anet_transaction(approved: str) -> Reader:
    """authorization / authcapture / capture: approved, declined, or held for review by responseCode."""

    def read(body: dict) -> Change:
        payload, transaction, at = _anet(body)
        code = int(payload.get("responseCode") or 1)
        change = Change(ids=[transaction], at=at)
        if code == 1:
            change.status = approved
            if approved == PaymentStatus.SUCCEEDED:
                change.amount_captured = decimal(payload.get("authAmount"))
        elif code in ANET_DECLINED:
            change.status, change.failure_code = PaymentStatus.FAILED, ANET_DECLINED[code]
        else:
            change.status = PaymentStatus.PROCESSING  # held for review
        return change

    return read


def anet_refund(body: dict) -> Change:
    payload, transaction, at = _anet(body)
    return Change(
        ids=[], at=at, refund=RefundChange(transaction, RefundStatus.SUCCEEDED, decimal(payload.get("authAmount")))
    )


def anet_void(body: dict) -> Change:
    _, transaction, at = _anet(body)
    return Change(ids=[transaction], at=at, status=PaymentStatus.CANCELED, voided_id=transaction)


def anet_fraud_declined(body: dict) -> Change:
    _, transaction, at = _anet(body)
    return Change(ids=[transaction], at=at, status=PaymentStatus.FAILED, failure_code="fraud_declined")


READERS: dict[tuple[str, str], Reader] = {
    ("stripe", "payment_intent.succeeded"): stripe_intent(PaymentStatus.SUCCEEDED),
    ("stripe", "payment_intent.payment_failed"): stripe_intent(PaymentStatus.FAILED),
    ("stripe", "payment_intent.requires_action"): stripe_intent(PaymentStatus.REQUIRES_ACTION),
    ("stripe", "payment_intent.canceled"): stripe_intent(PaymentStatus.CANCELED),
    ("stripe", "charge.refunded"): stripe_charge_refunded,
    ("stripe", "charge.dispute.created"): stripe_dispute,
    ("paypal", "PAYMENT.CAPTURE.COMPLETED"): paypal_capture(PaymentStatus.SUCCEEDED),
    ("paypal", "PAYMENT.CAPTURE.DENIED"): paypal_capture(PaymentStatus.FAILED),
    ("paypal", "PAYMENT.CAPTURE.REFUNDED"): paypal_refund,
    ("paypal", "CUSTOMER.DISPUTE.CREATED"): paypal_dispute,
    ("square", "payment.updated"): square_payment,
    ("square", "refund.created"): square_refund,
    ("square", "refund.updated"): square_refund,
    ("authorize_net", "net.authorize.payment.authorization.created"): anet_transaction(PaymentStatus.AUTHORIZED),
    ("authorize_net", "net.authorize.payment.authcapture.created"): anet_transaction(PaymentStatus.SUCCEEDED),
    ("authorize_net", "net.authorize.payment.capture.created"): anet_transaction(PaymentStatus.SUCCEEDED),
    ("authorize_net", "net.authorize.payment.priorAuthCapture.created"): anet_transaction(PaymentStatus.SUCCEEDED),
    ("authorize_net", "net.authorize.payment.refund.created"): anet_refund,
    ("authorize_net", "net.authorize.payment.void.created"): anet_void,
    ("authorize_net", "net.authorize.payment.fraud.declined"): anet_fraud_declined,
}
