"""PayPal: Orders v2 and Payments v2 over the hub's HTTP client.

- `charge` creates an order (intent CAPTURE, or AUTHORIZE to authorise only) for the amount as a
  decimal string in the currency's places, with `custom_id` (else the hub's `hub_payment_id`) and
  `invoice_id` from the request's metadata, and answers requires_action with the link where the
  payer approves it. Paid with a saved billing agreement (`payment_method`), the order is captured
  (or authorised) with it at once, as PayPal's billing-agreement flow does, and needs no payer.
- `capture` reads the order first (its intent, status and currency): an order still waiting for
  the payer, or already captured, is answered as it is. An approved CAPTURE order is captured in
  full; an AUTHORIZE order is authorised if it was not yet, then its authorisation is captured, in
  full or in part, as the final capture (the rest is released, as Stripe's partial capture does).
- `refund` refunds the capture kept in `extra["capture_id"]` (looked up on the order when absent).
- Every POST carries the request's idempotency key as PayPal-Request-Id (with `-capture` or
  `-authorize` for the second step of a charge or capture), so a retry never acts twice.
- A 422 whose issue is a decline (INSTRUMENT_DECLINED, TRANSACTION_REFUSED, ...) is a failed
  payment, one that needs the payer again (PAYER_ACTION_REQUIRED, ...) requires action, and a
  refund PayPal will not make (insufficient funds, a dispute) is a failed refund; every other
  refusal is a `PayPalError` (a `BadResponse`) with PayPal's name, issue, description and debug id.
"""

from __future__ import annotations

import time
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from integrations.connectors.base import CheckResult
from integrations.errors import BadResponse, ConfigurationError, IntegrationError
from payments.money import to_decimal_string

from .base import ChargeRequest, Gateway, GatewayPayment, GatewayRefund, PaymentStatus, RefundRequest, RefundStatus
from .paypal_client import PayPalApi, PayPalError, PayPalToken, api_url, environment, hints, segment
from .paypal_mapping import (
    approval_url,
    first_unit,
    from_capture,
    from_order,
    from_refund,
    money,
    open_authorization,
)

if TYPE_CHECKING:
    from integrations.http import HttpClient
    from integrations.models import Connection

ORDERS = "/v2/checkout/orders"
# Issues of a 422 that answer "no" to the payment itself: the hub records a failed payment.
DECLINES = {
    "INSTRUMENT_DECLINED",
    "TRANSACTION_REFUSED",
    "PAYER_CANNOT_PAY",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
    "PAYER_ACCOUNT_RESTRICTED",
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
    "DECLINED_DUE_TO_RELATED_TXN",
    "PAYEE_BLOCKED_TRANSACTION",
    "TRANSACTION_BLOCKED_BY_PAYEE",
    "TRANSACTION_LIMIT_EXCEEDED",
    "TRANSACTION_RECEIVING_LIMIT_EXCEEDED",
    "COMPLIANCE_VIOLATION",
    "REFERENCED_CARD_EXPIRED",
    "AGREEMENT_ALREADY_CANCELLED",
    "BILLING_AGREEMENT_NOT_FOUND",
    "ORDER_EXPIRED",
    "AUTHORIZATION_EXPIRED",
}
# Issues that send the payer back to PayPal (to approve, or to choose another way to pay).
PAYER_MUST_ACT = {"PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING"}
# Issues of a 422 to a refund that PayPal will not make for the merchant or the payer's account.
REFUND_REFUSALS = {
    "REFUND_FAILED_INSUFFICIENT_FUNDS",
    "TRANSACTION_DISPUTED",
    "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK",
    "REFUND_TIME_LIMIT_EXCEEDED",
    "REFUND_NOT_ALLOWED",
    "REFUND_IS_RESTRICTED",
    "PENDING_CAPTURE",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
    "PAYEE_ACCOUNT_LOCKED_OR_CLOSED",
    "PAYEE_ACCOUNT_RESTRICTED",
}


class PayPalGateway(Gateway):
    platform = "paypal"

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        super().__init__(connection, client=client)
        # An injected client (tests) still speaks PayPal's hints and error words.
        self.client.hints = hints()

    @cached_property
    def api(self) -> PayPalApi:
        base_url = api_url(self.credentials, self.connection.base_url or "")
        cache_id = str(self.connection.pk) if self.connection.pk else f"unsaved-{self.connection.uuid}"
        keys = (self.credential("client_id"), self.credential("client_secret"))
        return PayPalApi(self.client, base_url, PayPalToken(self.client, base_url, *keys, cache_id))

    # --- The five operations ---

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        currency = request.currency.upper()
        unit: dict[str, Any] = {"amount": amount_of(request.amount, currency)}
        if request.description:
            unit["description"] = request.description[:127]
        # PayPal echoes custom_id in its captures and refunds (and their webhooks): the hub's own
        # payment id unless the caller chose one.
        custom_id = request.metadata.get("custom_id") or request.metadata.get("hub_payment_id")
        if custom_id:
            unit["custom_id"] = str(custom_id)[:127]
        if request.metadata.get("invoice_id"):
            unit["invoice_id"] = str(request.metadata["invoice_id"])[:127]
        order: dict[str, Any] = {"intent": "CAPTURE" if request.capture else "AUTHORIZE", "purchase_units": [unit]}
        if not request.payment_method:
            context = {"return_url": request.return_url, "cancel_url": request.cancel_url, "user_action": "PAY_NOW"}
            order["payment_source"] = {"paypal": {"experience_context": {k: v for k, v in context.items() if v}}}
        created = self.api.post(ORDERS, order, request.idempotency_key)
        if not request.payment_method:
            return from_order(created)
        action = "capture" if request.capture else "authorize"
        source = {"payment_source": {"token": {"id": request.payment_method, "type": "BILLING_AGREEMENT"}}}
        return self._act(created, action, source, f"{request.idempotency_key}-{action}")

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        order = self.api.get(f"{ORDERS}/{segment(gateway_id)}")
        if order.get("status") != "APPROVED" and open_authorization(order) is None:
            return from_order(order)  # waiting for the payer, or captured, voided or declined already
        if order.get("intent") == "AUTHORIZE":
            return self._capture_authorization(order, amount, idempotency_key)
        current = from_order(order)
        if amount is not None and amount != current.amount:
            raise ConfigurationError(
                f"PayPal captures order {gateway_id} in full ({current.amount} {current.currency}), not {amount}.",
                hint="Charge with capture=False (authorise only) to capture part of a PayPal payment.",
            )
        return self._act(order, "capture", {}, idempotency_key)

    def refund(self, request: RefundRequest) -> GatewayRefund:
        capture_id = str(request.payment_extra.get("capture_id") or "")
        if not capture_id:
            capture_id = self.retrieve(request.gateway_payment_id).extra.get("capture_id", "")
        if not capture_id:
            raise BadResponse(f"PayPal order {request.gateway_payment_id} has no captured payment to refund.")
        body: dict[str, Any] = {"amount": amount_of(request.amount, request.currency.upper())}
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        path = f"/v2/payments/captures/{segment(capture_id)}/refund"
        try:
            return from_refund(self.api.post(path, body, request.idempotency_key))
        except PayPalError as error:
            if error.status != 422 or error.issue not in REFUND_REFUSALS:
                raise
            return GatewayRefund(
                status=RefundStatus.FAILED,
                gateway_id="",
                amount=request.amount,
                failure_code=error.issue,
                failure_message=error.description,
                raw=error.body,
            )

    def retrieve(self, gateway_id: str) -> GatewayPayment:
        return from_order(self.api.get(f"{ORDERS}/{segment(gateway_id)}"))

    def check(self) -> CheckResult:
        """Mint an app token (never retried, never cached): PayPal accepts the keys or it does not."""
        started = time.monotonic()
        try:
            where = environment(self.credentials)
            answer = self.api.tokens.request(retry=False)
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=int((time.monotonic() - started) * 1000))
        details = {"environment": where, "app_id": str(answer.get("app_id") or "")}
        if self.connection.base_url:
            details["base_url"] = self.connection.base_url
        said = "sandbox: test payments only" if where == "sandbox" else "live: payments are real"
        return CheckResult(
            ok=True,
            message=f"PayPal accepted the client ID and secret ({said}).",
            latency_ms=int((time.monotonic() - started) * 1000),
            details=details,
        )

    # --- The steps ---

    def _capture_authorization(self, order: dict[str, Any], amount: Decimal | None, key: str) -> GatewayPayment:
        authorization = open_authorization(order)
        if authorization is None:  # approved, not authorised yet
            try:
                order = self.api.post(f"{ORDERS}/{segment(order['id'])}/authorize", {}, f"{key}-authorize")
            except PayPalError as error:
                return self._refused(error, order)
            authorization = open_authorization(order)
            if authorization is None:
                return from_order(order)  # denied, or pending PayPal's review: nothing to capture yet
        body: dict[str, Any] = {"final_capture": True}
        if amount is not None:
            body["amount"] = amount_of(amount, money(first_unit(order).get("amount"))[1])
        path = f"/v2/payments/authorizations/{segment(authorization['id'])}/capture"
        try:
            return from_capture(self.api.post(path, body, key), order)
        except PayPalError as error:
            return self._refused(error, order)

    def _act(self, order: dict[str, Any], action: str, body: dict[str, Any], request_id: str) -> GatewayPayment:
        """Capture or authorise an order; PayPal answers with the order."""
        try:
            return from_order(self.api.post(f"{ORDERS}/{segment(order['id'])}/{action}", body, request_id))
        except PayPalError as error:
            return self._refused(error, order)

    def _refused(self, error: PayPalError, order: dict[str, Any]) -> GatewayPayment:
        """A decline, or a payer to send back to PayPal, is an answer; anything else stays an error."""
        if error.status != 422 or error.issue not in DECLINES | PAYER_MUST_ACT:
            raise error
        payment = from_order(order)
        payment.raw = error.body
        payment.failure_code = error.issue
        payment.failure_message = error.description
        if error.issue in DECLINES:
            payment.status = PaymentStatus.FAILED
        else:
            payment.status = PaymentStatus.REQUIRES_ACTION
            payment.approval_url = approval_url(order)
        return payment


def amount_of(amount: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": to_decimal_string(amount, currency)}
