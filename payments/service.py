"""What people and programs do with payments (the API and the admin call these): take, capture,
refund, ask again; and the one rule for moving a payment's status.

- A payment is stored first (status processing) with an idempotency key derived from its uuid, then
  the gateway is asked. A passing failure (Unavailable, RateLimited, a timeout) is retried with the
  same key, so the gateway answers the first attempt's result instead of charging again. When the
  retries run out, the payment stays processing with the reason: its outcome is unknown until a
  webhook says, or a person asks again (`resend`, the same key once more).
- A declined card or a payment that needs the customer is an answer, recorded as its status. The
  gateway refusing the request itself (bad credentials, an invalid request) fails the payment with
  the gateway's reason. Nothing is raised at the caller for what the gateway said; what the hub
  refuses before asking (`PaymentError`) is.
- Refunds hold their amount while pending, so two refunds at once never exceed what was captured.
- Statuses only move forward (`move`): a refunded or disputed payment is never set back to
  succeeded by an older event, and among the states before the money is taken the newer event wins.

Client secrets and payment method tokens are never logged; card numbers are refused outright.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.errors import IntegrationError, Unavailable
from tenants import audit

from .gateways import GATEWAYS, get_gateway
from .gateways.base import ChargeRequest, GatewayPayment, GatewayRefund, PaymentStatus, RefundRequest, RefundStatus
from .models import Payment, Refund, format_amount
from .money import AmountError, to_decimal_string

if TYPE_CHECKING:
    from commerce.models import Order
    from integrations.models import Connection
    from tenants.models import Tenant

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Looked up here at call time, so tests can make the waits instant.
sleep = time.sleep

# How far along a status is. A payment never moves to a lower rank; among the rank-0 states (before
# the money is taken) the newer event wins.
RANK = {
    PaymentStatus.REQUIRES_ACTION: 0,
    PaymentStatus.PROCESSING: 0,
    PaymentStatus.AUTHORIZED: 0,
    PaymentStatus.FAILED: 0,
    PaymentStatus.SUCCEEDED: 1,
    PaymentStatus.CANCELED: 2,
    PaymentStatus.PARTIALLY_REFUNDED: 3,
    PaymentStatus.REFUNDED: 4,
    PaymentStatus.DISPUTED: 5,
}
REFUNDABLE = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
# 12 to 19 digits, spaced or dashed as people type them: a card number, which the hub never takes.
CARD_NUMBER = re.compile(r"^\d(?:[ -]?\d){11,18}$")
# What the amount columns hold (18 digits, 4 of them places).
LARGEST = Decimal(10) ** 14
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40


class PaymentError(Exception):
    """A request the hub refuses before asking the gateway, with the field it is about."""

    code = "invalid"

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class StateConflict(PaymentError):
    """The payment is not in a state that allows this (refunding a failed payment, capturing twice)."""

    code = "conflict"


# --- Validation ------------------------------------------------------------------------------------


def check_amount(amount: Any, currency: str, *, field: str = "amount") -> Decimal:
    """A positive amount with no more places than the currency has (¥500, $10.50, 1.234 KWD)."""
    try:
        value = Decimal(str(amount))
        if not value.is_finite() or abs(value) >= LARGEST:
            raise InvalidOperation
        to_decimal_string(value, currency)
    except (InvalidOperation, ValueError, AmountError) as error:
        message = str(error) if isinstance(error, AmountError) else "Give the amount as a number, e.g. 10.50."
        raise PaymentError(message, field=field) from None
    return value


def check_currency(currency: Any, *, field: str = "currency") -> str:
    code = str(currency or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise PaymentError("Use a three-letter ISO 4217 currency code, e.g. USD.", field=field)
    return code


def check_token(value: str, field: str) -> str:
    """Gateway ids and tokens only: something shaped like a card number is refused (and not repeated)."""
    value = (value or "").strip()
    if CARD_NUMBER.match(value):
        raise PaymentError(
            "This looks like a card number. The hub never takes card data: send the payment method id or token "
            "the gateway's own client library gave you.",
            field=field,
        )
    return value


def check_metadata(metadata: dict | None) -> dict[str, str]:
    metadata = dict(metadata or {})
    if len(metadata) > METADATA_MAX_KEYS:
        raise PaymentError(f"At most {METADATA_MAX_KEYS} metadata keys.", field="metadata")
    for key in metadata:
        if len(str(key)) > METADATA_KEY_MAX or not str(key).isprintable():
            raise PaymentError(f"Metadata keys are at most {METADATA_KEY_MAX} printable characters.", field="metadata")
    return {str(k): str(v) for k, v in metadata.items()}


def gateway_connections(tenant: Tenant | int | None):
    """The tenant's payment gateway connections."""
    from integrations.models import Connection

    return Connection.objects.for_tenant(tenant).filter(platform__in=list(GATEWAYS))


# --- Taking payments -------------------------------------------------------------------------------


def create_payment(
    tenant: Tenant,
    connection: Connection,
    amount: Any,
    currency: str,
    *,
    customer: str = "",
    payment_method: str = "",
    description: str = "",
    metadata: dict | None = None,
    order: Order | None = None,
    capture: bool = True,
    presentment_amount: Any = None,
    presentment_currency: str = "",
    return_url: str = "",
    cancel_url: str = "",
    request=None,
    client_key: str = "",
) -> Payment:
    """Store the payment, then charge (or only authorise) it at the connection's gateway. With the
    API client's own `client_key` (its Idempotency-Key), a key seen before answers the payment made
    with it, charging nothing; the same key for another amount, currency or gateway is refused."""
    if connection.tenant_id != tenant.pk or connection.platform not in GATEWAYS:
        raise PaymentError("This connection is not one of your payment gateways.", field="connection")
    if not connection.enabled:
        raise PaymentError(f"The connection “{connection.name}” is disabled.", field="connection")
    currency = check_currency(currency)
    amount = check_amount(amount, currency)
    if (presentment_amount is None) != (not presentment_currency):
        raise PaymentError("Give the presentment amount and its currency together.", field="presentment_amount")
    if presentment_amount is not None:
        presentment_currency = check_currency(presentment_currency, field="presentment_currency")
        presentment_amount = check_amount(presentment_amount, presentment_currency, field="presentment_amount")
    if order is not None and order.tenant_id != tenant.pk:
        raise PaymentError("No order of yours has this id.", field="order")
    if client_key and (earlier := _by_client_key(tenant, client_key, connection, amount, currency)):
        return earlier
    fields = dict(
        tenant=tenant,
        connection=connection,
        order=order,
        amount=amount,
        currency=currency,
        presentment_amount=presentment_amount,
        presentment_currency=presentment_currency or "",
        capture=capture,
        customer=check_token(customer, "customer"),
        payment_method=check_token(payment_method, "payment_method"),
        description=description,
        metadata=check_metadata(metadata),
        return_url=return_url,
        cancel_url=cancel_url,
        status=PaymentStatus.PROCESSING,
        client_key=client_key,
    )
    try:
        with transaction.atomic():
            payment = Payment.objects.create(**fields)
    except IntegrityError:
        if not client_key:
            raise
        # The same key at the same moment from a second request: the first one's payment.
        return _by_client_key(tenant, client_key, connection, amount, currency)
    audit.record(
        "payment.created",
        request=request,
        tenant=tenant,
        target=payment,
        payment=payment.pk,
        gateway=connection.platform,
        amount=format_amount(amount, currency),
        currency=currency,
    )
    return _charge(payment)


def _by_client_key(tenant: Tenant, client_key: str, connection, amount, currency: str) -> Payment | None:
    earlier = Payment.objects.for_tenant(tenant).filter(client_key=client_key).first()
    if earlier is not None and (earlier.connection_id, earlier.amount, earlier.currency) != (
        connection.pk,
        amount,
        currency,
    ):
        raise StateConflict(
            "This Idempotency-Key was used for another payment (another amount, currency or gateway): "
            "use a new key for a new payment."
        )
    if earlier is not None:
        earlier.replayed = True  # answered again, nothing charged
    return earlier


def _charge(payment: Payment) -> Payment:
    charge = ChargeRequest(
        idempotency_key=payment.idempotency_key,
        amount=payment.amount,
        currency=payment.currency,
        capture=payment.capture,
        payment_method=payment.payment_method,
        customer=payment.customer,
        description=payment.description,
        # The hub's own id rides along, so a webhook can name the payment even before its answer is stored.
        metadata={**payment.metadata, "hub_payment_id": str(payment.uuid)},
        return_url=payment.return_url,
        cancel_url=payment.cancel_url,
    )
    try:
        gateway = get_gateway(payment.connection)
        answer = with_retries(lambda: gateway.charge(charge), f"Charge of payment {payment.pk}")
    except IntegrationError as error:
        return _gateway_failed(payment, error)
    record_answer(payment, answer)
    logger.info("Payment %s at %s: %s", payment.pk, payment.connection.platform, payment.status)
    return payment


def capturable(payment: Payment) -> bool:
    """Authorised, or waiting for the customer at an approval link (PayPal): once they approve, the
    order is captured, by the client's call after the customer comes back or by the approval's webhook."""
    if payment.status == PaymentStatus.AUTHORIZED:
        return True
    return payment.status == PaymentStatus.REQUIRES_ACTION and bool(payment.approval_url)


def capture(payment: Payment, amount: Any = None, *, request=None) -> Payment:
    """Capture an authorised (or approved) payment, in full (`amount` None) or in part."""
    if not capturable(payment):
        raise StateConflict(
            "Only an authorised payment, or one the customer approved at its approval link, can be captured; "
            f"this one is {payment.get_status_display()}."
        )
    if amount is not None:
        amount = check_amount(amount, payment.currency)
        if amount > payment.amount:
            limit = format_amount(payment.amount, payment.currency)
            raise PaymentError(f"At most the authorised {limit} {payment.currency} can be captured.", field="amount")
    key = f"cap_{payment.uuid.hex}"
    try:
        gateway = get_gateway(payment.connection)
        answer = with_retries(
            lambda: gateway.capture(payment.gateway_id, amount, key), f"Capture of payment {payment.pk}"
        )
    except IntegrationError as error:
        # The authorisation (or approval) stands: say why it was not captured, and keep the status.
        payment.failure_code, payment.failure_message = error.code, str(error)
        payment.updated_at = timezone.now()
        payment.save(update_fields=["failure_code", "failure_message", "updated_at"])
        logger.warning("Capture of payment %s failed: %s", payment.pk, error.code)
        return payment
    record_answer(payment, answer)
    audit.record(
        "payment.captured",
        request=request,
        tenant=payment.tenant,
        target=payment,
        payment=payment.pk,
        amount=format_amount(payment.amount_captured, payment.currency),
    )
    return payment


def refund(payment: Payment, amount: Any = None, reason: str = "", *, request=None) -> Refund:
    """Refund all that is left (`amount` None) or part of it. Refused when the amount exceeds what
    was captured less what was refunded and what pending refunds hold."""
    with transaction.atomic():
        # Locked, so two refunds at once cannot both take the same remainder.
        payment = Payment.objects.select_for_update().select_related("connection", "tenant").get(pk=payment.pk)
        if payment.status not in REFUNDABLE:
            raise StateConflict(
                f"Only a payment that succeeded can be refunded; this one is {payment.get_status_display()}."
            )
        available = payment.refundable
        if available <= 0:
            raise StateConflict("Nothing is left to refund on this payment.")
        amount = available if amount is None else check_amount(amount, payment.currency)
        if amount > available:
            raise PaymentError(refund_limit_message(payment, available), field="amount")
        row = Refund.objects.create(
            tenant_id=payment.tenant_id, payment=payment, amount=amount, currency=payment.currency, reason=reason
        )
    audit.record(
        "payment.refund_requested",
        request=request,
        tenant=payment.tenant,
        target=payment,
        payment=payment.pk,
        refund=row.pk,
        amount=format_amount(amount, payment.currency),
    )
    return _send_refund(payment, row)


def refund_limit_message(payment: Payment, available: Decimal) -> str:
    succeeded, pending = payment.refund_totals()

    def money(value: Decimal) -> str:
        return f"{format_amount(value, payment.currency)} {payment.currency}"

    held = f", {money(pending)} in pending refunds" if pending else ""
    refunded = max(payment.amount_refunded, succeeded)
    return (
        f"At most {money(available)} can be refunded: {money(payment.amount_captured)} captured, "
        f"{money(refunded)} already refunded{held}."
    )


def _send_refund(payment: Payment, row: Refund) -> Refund:
    ask = RefundRequest(
        idempotency_key=row.idempotency_key,
        gateway_payment_id=payment.gateway_id,
        amount=row.amount,
        currency=row.currency,
        reason=row.reason,
        payment_extra=dict(payment.extra or {}),
    )
    try:
        gateway = get_gateway(payment.connection)
        answer = with_retries(lambda: gateway.refund(ask), f"Refund {row.pk} of payment {payment.pk}")
    except IntegrationError as error:
        row.failure_code, row.failure_message = error.code, str(error)
        if error.permanent:
            row.status = RefundStatus.FAILED
        else:
            # Perhaps refunded, perhaps not: it keeps holding its amount until a webhook or a person says.
            row.failure_message += " The gateway's answer is unknown: ask again with the same idempotency key."
        row.updated_at = timezone.now()
        row.save(update_fields=["status", "failure_code", "failure_message", "updated_at"])
        logger.warning("Refund %s of payment %s: %s", row.pk, payment.pk, error.code)
        return row
    record_refund_answer(payment, row, answer)
    return row


def record_refund_answer(payment: Payment, row: Refund, answer: GatewayRefund) -> None:
    row.status = answer.status if answer.status in RefundStatus.values else RefundStatus.PENDING
    row.gateway_id = answer.gateway_id or row.gateway_id
    if answer.amount is not None and answer.status == RefundStatus.SUCCEEDED:
        row.amount = answer.amount
    row.failure_code, row.failure_message = answer.failure_code, answer.failure_message
    row.raw = answer.raw or row.raw
    row.updated_at = timezone.now()
    row.save()
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        settle_refunds(payment, timezone.now())
        payment.save()
    logger.info("Refund %s of payment %s: %s", row.pk, payment.pk, row.status)


def resend(payment: Payment) -> Payment:
    """Ask the gateway again, with the same idempotency keys, about a charge or refunds whose answer
    never came (the retries ran out): the gateway answers what it did, or does it now, once."""
    if payment.status == PaymentStatus.PROCESSING and not payment.gateway_id:
        payment = _charge(payment)
    for row in payment.refunds.filter(status=RefundStatus.PENDING, gateway_id=""):
        _send_refund(payment, row)
    payment.refresh_from_db()
    return payment


# --- Retries ---------------------------------------------------------------------------------------


def with_retries(call: Callable[[], T], what: str) -> T:
    """Call the gateway; a passing failure is tried again (the call sends the same idempotency key
    each time) up to PAYMENTS_MAX_ATTEMPTS in all, waiting PAYMENTS_RETRY_DELAY_SECONDS, doubling."""
    attempts = max(1, settings.PAYMENTS_MAX_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError, TimeoutError) as exc:
            error: IntegrationError = Unavailable(f"The gateway did not answer ({type(exc).__name__}).")
        except IntegrationError as exc:
            if exc.permanent:
                raise
            error = exc
        if attempt == attempts:
            raise error
        delay = settings.PAYMENTS_RETRY_DELAY_SECONDS * 2 ** (attempt - 1)
        logger.info(
            "%s: %s; attempt %d of %d in %.1f s, same idempotency key", what, error.code, attempt + 1, attempts, delay
        )
        if delay:
            sleep(delay)
    raise AssertionError("unreachable")


def _gateway_failed(payment: Payment, error: IntegrationError) -> Payment:
    payment.failure_code, payment.failure_message = error.code, str(error)
    if error.permanent:
        payment.status = PaymentStatus.FAILED
        payment.status_updated_at = timezone.now()
    else:
        payment.failure_message += (
            " The gateway's answer is unknown: the payment may have been taken. A webhook will settle it, or "
            "ask again (admin: “Ask the gateway again”), which sends the same idempotency key."
        )
    payment.updated_at = timezone.now()
    payment.save()
    logger.warning("Payment %s at %s: %s", payment.pk, payment.connection.platform, error.code)
    return payment


# --- Recording what the gateway says ---------------------------------------------------------------

# Keys of GatewayPayment.extra whose value is a second id the gateway's events may name the payment by:
# PayPal's capture, Stripe's latest charge.
REFERENCE_KEYS = ("capture_id", "latest_charge", "charge_id")


def record_answer(payment: Payment, answer: GatewayPayment, at: datetime | None = None) -> None:
    """Store a gateway's answer on the payment (charge, capture, retrieve)."""
    at = at or timezone.now()
    status = answer.status if answer.status in PaymentStatus.values else None
    if status is None:
        logger.warning("Payment %s: the gateway answered an unknown status", payment.pk)
    payment.gateway_id = answer.gateway_id or payment.gateway_id
    payment.extra = {**(payment.extra or {}), **(answer.extra or {})}
    reference = next((str(payment.extra[k]) for k in REFERENCE_KEYS if payment.extra.get(k)), "")
    payment.gateway_reference = reference or payment.gateway_reference
    if answer.client_secret:
        payment.client_secret = answer.client_secret
    payment.approval_url = answer.approval_url or payment.approval_url
    if answer.amount_captured is not None:
        payment.amount_captured = max(payment.amount_captured, answer.amount_captured)
    elif status == PaymentStatus.SUCCEEDED and not payment.amount_captured:
        payment.amount_captured = payment.amount
    if answer.amount_refunded is not None:
        payment.amount_refunded_reported = max(payment.amount_refunded_reported, answer.amount_refunded)
    if status is not None and move(payment, status, at):
        if status in (PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION):
            payment.failure_code, payment.failure_message = answer.failure_code, answer.failure_message
        else:
            payment.failure_code = payment.failure_message = ""
    payment.raw = answer.raw or payment.raw
    settle_refunds(payment, at)
    payment.updated_at = timezone.now()
    payment.save()


def move(payment: Payment, status: str, at: datetime) -> bool:
    """Set the status unless the payment is further along, or the event is older than the state held
    (among the states before the money is taken). Returns whether the status was applied."""
    current, target = RANK.get(payment.status, 0), RANK.get(status, 0)
    held = payment.status_updated_at
    if target < current:
        return False
    if target == current and held is not None and at < held:
        return False
    payment.status = status
    payment.status_updated_at = max(at, held) if held is not None else at
    return True


def settle_refunds(payment: Payment, at: datetime) -> None:
    """The refunded amount and status from what is known: the gateway's last total and the refunds
    known one by one (the larger, since both are what the gateway has at least)."""
    succeeded, _ = payment.refund_totals() if payment.pk else (Decimal("0"), Decimal("0"))
    payment.amount_refunded = max(payment.amount_refunded, payment.amount_refunded_reported, succeeded)
    if payment.amount_refunded <= 0:
        return
    captured = payment.amount_captured or payment.amount
    full = payment.amount_refunded >= captured
    move(payment, PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED, at)
