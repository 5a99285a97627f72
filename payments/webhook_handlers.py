"""Gateway webhooks applied to payments: `HANDLERS`, by (provider, topic), merged into the webhooks
app's registry (`webhooks.processing.handlers`).

Each handler reads its stored, verified event into a `Change` (`webhook_events`), finds the payment
by the gateway's id among the connection's own payments (so within its tenant), and applies the
change under a row lock: amounts only grow, a refund is known by its own gateway id (so a second
delivery or a second event about it never counts it twice), and the status moves by
`service.move`: a later state never goes back, and among the states before the money is taken the
newer event wins. An event about a payment not made through the hub (the same gateway account
takes the shop's own payments too) is left alone; one that may be about a payment whose answer is
still being recorded is retried (`NotYet`); a payload that does not read is parked at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.utils import timezone

from webhooks.errors import Unprocessable
from webhooks.models import WebhookEvent

from .gateways.base import PaymentStatus, RefundStatus
from .models import Payment, Refund, RefundSource
from .service import capturable, capture, move, settle_refunds
from .webhook_events import READERS, Change, Reader, RefundChange

Handler = Callable[[WebhookEvent], str]
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, InvalidOperation)
# A payment stored this recently and still waiting for its gateway's answer may be the one an
# event names before the answer (with the id) is recorded: such an event is retried, not dropped.
IN_FLIGHT = timedelta(minutes=10)


class NotYet(LookupError):
    """The event may be about a payment whose gateway answer is still being recorded: retried."""


def handler(read: Reader) -> Handler:
    def handle(event: WebhookEvent) -> str:
        data = event.data
        if not isinstance(data, dict):
            raise Unprocessable("The payload is not a JSON object.")
        try:
            change = read(data)
        except MALFORMED as exc:
            raise Unprocessable(f"The {event.topic} payload does not read: {type(exc).__name__}: {exc}") from exc
        return apply(event, change)

    return handle


def apply(event: WebhookEvent, change: Change) -> str:
    if event.tenant_id != event.connection.tenant_id:
        raise Unprocessable("The event's tenant is not its connection's.")
    scope = Payment.objects.for_tenant(event.tenant_id).filter(connection_id=event.connection_id)
    if change.voided_id and (refund := _refund(scope, change.voided_id)) is not None:
        return _void_refund(refund)
    found = find(scope, change)
    if found is None:
        return _not_found(scope, change)
    payment = scope.select_for_update().get(pk=found.pk)
    at = change.at or event.received_at
    before = payment.status
    ids = [i for i in change.ids if i]
    if not payment.gateway_id and ids:  # found by the hub's own id before its answer was stored
        payment.gateway_id = ids[0]
    if change.reference and not payment.gateway_reference and change.reference != payment.gateway_id:
        payment.gateway_reference = change.reference
    if change.amount_captured is not None:
        payment.amount_captured = max(payment.amount_captured, change.amount_captured)
    if change.refunded_total is not None:
        payment.amount_refunded_reported = max(payment.amount_refunded_reported, change.refunded_total)
    refund_note = _record_refund(payment, change.refund) if change.refund else ""
    applied = True
    if change.status:
        applied = move(payment, change.status, at)
        if applied and change.status in (PaymentStatus.FAILED, PaymentStatus.DISPUTED):
            payment.failure_code = change.failure_code[:64]
            payment.failure_message = change.failure_message
    settle_refunds(payment, at)
    payment.updated_at = timezone.now()
    payment.save()
    outcome = f"payment {payment.pk}: {before} → {payment.status}" if payment.status != before else ""
    if not applied:
        outcome = f"payment {payment.pk} left {payment.status}: the {change.status} event is older or behind it"
    return "; ".join(part for part in (outcome or f"payment {payment.pk} {payment.status}", refund_note) if part)


def find(scope, change: Change) -> Payment | None:
    ids = [i for i in change.ids if i]
    if ids:
        payment = scope.filter(Q(gateway_id__in=ids) | Q(gateway_reference__in=ids)).order_by("-created_at").first()
        if payment is not None:
            return payment
    for hub_id in change.hub_payment_ids:
        try:
            payment = scope.filter(uuid=uuid.UUID(hub_id)).first()
        except ValueError:
            continue
        if payment is not None:
            return payment
    if change.refund and (refund := _refund(scope, change.refund.gateway_id)) is not None:
        return refund.payment
    return None


def _refund(scope, gateway_id: str) -> Refund | None:
    if not gateway_id:
        return None
    return Refund.objects.filter(payment__in=scope, gateway_id=gateway_id).select_related("payment").first()


def _not_found(scope, change: Change) -> str:
    in_flight = scope.filter(
        status=PaymentStatus.PROCESSING, gateway_id="", created_at__gte=timezone.now() - IN_FLIGHT
    ).exists()
    ids = ", ".join(i for i in change.ids if i) or (change.refund.gateway_id if change.refund else "")
    if in_flight:
        raise NotYet(f"No payment has the id {ids} yet; one is waiting for its gateway's answer.")
    return f"No payment made through the hub has the id {ids or '(none)'}: left alone."


def _record_refund(payment: Payment, change: RefundChange) -> str:
    """One refund by its gateway id: the hub's own is settled, one made elsewhere is added."""
    row = payment.refunds.filter(gateway_id=change.gateway_id).first() if change.gateway_id else None
    if row is None:
        if change.amount is None or not change.gateway_id:
            return "the refund names no amount: left to the payment's totals"
        Refund.objects.create(
            tenant_id=payment.tenant_id,
            payment=payment,
            amount=Decimal(change.amount),
            currency=payment.currency,
            status=change.status,
            source=RefundSource.GATEWAY,
            gateway_id=change.gateway_id,
        )
        return f"refund {change.gateway_id} recorded ({change.status})"
    if row.status == RefundStatus.PENDING and change.status != RefundStatus.PENDING:
        row.status = change.status
        row.updated_at = timezone.now()
        row.save(update_fields=["status", "updated_at"])
        return f"refund {row.pk} {row.status}"
    return f"refund {row.pk} already {row.status}"


def _void_refund(refund: Refund) -> str:
    """Authorize.Net voids a refund that has not settled yet: it never happened."""
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    refund.status = RefundStatus.FAILED
    refund.failure_code, refund.failure_message = "voided", "The refund was voided before it settled."
    refund.updated_at = timezone.now()
    refund.save(update_fields=["status", "failure_code", "failure_message", "updated_at"])
    # Only what the gateway reports one by one was counted from it, so the total is the refunds again.
    succeeded, _ = payment.refund_totals()
    payment.amount_refunded = max(succeeded, Decimal("0"))
    payment.amount_refunded_reported = min(payment.amount_refunded_reported, payment.amount_refunded)
    if payment.amount_refunded == 0 and payment.status in (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED):
        payment.status = PaymentStatus.SUCCEEDED
    elif payment.status == PaymentStatus.REFUNDED and payment.amount_refunded < payment.amount_captured:
        payment.status = PaymentStatus.PARTIALLY_REFUNDED
    payment.updated_at = timezone.now()
    payment.save()
    return f"refund {refund.pk} of payment {payment.pk} voided"


def paypal_order_approved(event: WebhookEvent) -> str:
    """The payer approved a PayPal order: a payment to be taken at once is captured now (the same
    capture key as the client's own capture call, so the two never capture twice); one that was
    only to be authorised waits for the client's capture."""
    data = event.data
    try:
        order = data["resource"]
        ids = [str(order["id"])]
        hub_ids = [str(unit.get("custom_id") or "") for unit in order.get("purchase_units") or []]
    except MALFORMED as exc:
        raise Unprocessable(f"The {event.topic} payload does not read: {type(exc).__name__}: {exc}") from exc
    scope = Payment.objects.for_tenant(event.tenant_id).filter(connection_id=event.connection_id)
    change = Change(ids=ids, hub_payment_ids=hub_ids)
    found = find(scope, change)
    if found is None:
        return _not_found(scope, change)
    payment = scope.select_for_update().get(pk=found.pk)
    if not payment.capture or not capturable(payment):
        return f"payment {payment.pk} approved; {payment.status}, left for the client's capture"
    payment = capture(payment)
    return f"payment {payment.pk} approved and captured: {payment.status}"


HANDLERS: dict[tuple[str, str], Handler] = {key: handler(read) for key, read in READERS.items()}
HANDLERS["paypal", "CHECKOUT.ORDER.APPROVED"] = paypal_order_approved
