"""Square: payments over its Payments and Refunds APIs, the connection test over Locations.

- The seller's access token as a bearer token and the API version pinned (`Square-Version`, the
  version of the description the contract tests check against); production and sandbox have their
  own hosts, and the connection's base URL overrides both (a mock, a proxy).
- charge is CreatePayment: the Web Payments SDK's card token as `source_id`, amounts in minor
  units, `autocomplete=false` to authorise only. Square keeps the payment made with an
  idempotency key and answers a retry of the same request with it, so a retry after a timeout
  never charges twice. Its keys are at most 45 characters: a longer one is hashed to a stable one.
- capture is CompletePayment, after UpdatePayment lowers the amount for a capture in part.
- A card Square declines comes back as a 4xx whose errors have the category
  PAYMENT_METHOD_ERROR (CARD_DECLINED, CVV_FAILURE, VERIFY_AVS_FAILURE, ...): that is a failed
  payment, not an error. Any other refusal says why in Square's `errors` list, whose words go
  into the error's message. Mapping to the hub's terms is in square_mapping.py.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import requests

from integrations.connectors.base import CheckResult
from integrations.errors import BadResponse, ConfigurationError, IntegrationError
from integrations.http import Hints

from ..money import to_minor
from .base import ChargeRequest, Gateway, GatewayPayment, GatewayRefund, RefundRequest
from .square_mapping import (
    CAPTURED,
    declined_payment,
    describe,
    errors_of,
    is_answer,
    money,
    square_key,
    to_payment,
    to_refund,
)

ENVIRONMENTS = {"production": "https://connect.squareup.com", "sandbox": "https://connect.squareupsandbox.com"}
SQUARE_VERSION = "2025-08-20"
HINTS = {
    401: "Check the access token (Square Developer Console → Credentials): production and sandbox have their own.",
    403: "The access token lacks a permission: the hub needs PAYMENTS_READ, PAYMENTS_WRITE and MERCHANT_PROFILE_READ.",
}


class SquareGateway(Gateway):
    platform = "square"

    def __init__(self, connection, *, client=None) -> None:
        super().__init__(connection, client=client)
        self.client.hints = Hints(by_status=HINTS, describe=describe)

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        body: dict[str, Any] = {
            "source_id": request.payment_method,
            "idempotency_key": square_key(request.idempotency_key),
            "amount_money": money(request.amount, request.currency),
            "autocomplete": request.capture,
            "location_id": self.credential("location_id"),
        }
        if "@" in request.customer:
            body["buyer_email_address"] = request.customer
        elif request.customer:
            body["customer_id"] = request.customer
        # The hub's payment id when it has one: Square echoes reference_id in its webhooks, which is
        # how an event finds a payment whose answer was lost (payments.webhook_events).
        reference = (
            request.metadata.get("reference_id")
            or request.metadata.get("hub_payment_id")
            or request.metadata.get("order_id")
        )
        if reference:
            body["reference_id"] = str(reference)[:40]
        if request.description:
            body["note"] = request.description[:500]
        data = self._call("POST", "/v2/payments", body, answers=True)
        if isinstance(data.get("payment"), dict):
            return to_payment(data["payment"], errors_of(data))
        return declined_payment(data)

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        path = f"/v2/payments/{gateway_id}"
        if amount is not None:
            payment = self._payment_at(path)
            approved = payment["amount_money"]
            currency = str(approved.get("currency") or "")
            if payment.get("status") == "APPROVED" and to_minor(amount, currency) != approved.get("amount"):
                wanted = {"amount_money": money(amount, currency)}
                self._call("PUT", path, {"idempotency_key": square_key(idempotency_key), "payment": wanted})
        try:
            data = self._call("POST", f"{path}/complete", {})
        except BadResponse:
            # An earlier attempt whose answer was lost may have completed it: Square refuses to
            # complete a payment twice, and the payment says so.
            payment = to_payment(self._payment_at(path))
            if payment.status in CAPTURED:
                return payment
            raise
        return to_payment(self._payment_in(data))

    def refund(self, request: RefundRequest) -> GatewayRefund:
        body: dict[str, Any] = {
            "idempotency_key": square_key(request.idempotency_key),
            "amount_money": money(request.amount, request.currency),
            "payment_id": request.gateway_payment_id,
        }
        if request.reason:
            body["reason"] = request.reason[:192]
        return to_refund(self._call("POST", "/v2/refunds", body, answers=True), request.amount)

    def retrieve(self, gateway_id: str) -> GatewayPayment:
        return to_payment(self._payment_at(f"/v2/payments/{gateway_id}"))

    def check(self) -> CheckResult:
        started = time.monotonic()
        try:
            result = self._check()
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=int((time.monotonic() - started) * 1000))
        result.latency_ms = int((time.monotonic() - started) * 1000)
        return result

    def _check(self) -> CheckResult:
        location_id = self.credential("location_id")
        environment = self.environment
        found = self._call("GET", "/v2/locations", retry=False).get("locations")
        locations = [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []
        location = next((item for item in locations if item.get("id") == location_id), None)
        if location is None:
            known = ", ".join(f"{item.get('id')} ({item.get('name')})" for item in locations[:10])
            raise ConfigurationError(
                f"This Square account ({environment}) has no location “{location_id}”.",
                hint=f"Use one of its locations: {known}." if known else "Create a location in the Square Dashboard.",
            )
        name = location.get("name") or location_id
        if location.get("status") != "ACTIVE":
            raise ConfigurationError(
                f"The Square location “{name}” is inactive.", hint="Reactivate it in the Dashboard."
            )
        if "CREDIT_CARD_PROCESSING" not in (location.get("capabilities") or []):
            raise ConfigurationError(
                f"The Square location “{name}” cannot take card payments yet.",
                hint="Finish the account's activation (identity, bank account) in the Square Dashboard.",
            )
        return CheckResult(
            ok=True,
            message=f"Connected to Square ({environment}): location “{name}”.",
            details={
                "environment": environment,
                "live": environment == "production",
                "location": {key: location.get(key) for key in ("id", "name", "currency", "country")},
            },
        )

    # --- Requests ---

    @property
    def environment(self) -> str:
        value = str(self.credentials.get("environment") or "production").strip().lower()
        if value not in ENVIRONMENTS:
            raise ConfigurationError(f"“{value}” is not a Square environment.", hint="Use production or sandbox.")
        return value

    @property
    def base_url(self) -> str:
        return (self.connection.base_url or "").strip().rstrip("/") or ENVIRONMENTS[self.environment]

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, answers: bool = False, retry: bool = True
    ) -> dict[str, Any]:
        """Square's JSON answer. With `answers`, a refusal about the card or the refund is returned
        (its `errors`, with the failed payment when Square includes one) instead of raised."""
        refused: list[requests.Response] = []

        def keep(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
            if response.status_code >= 400:
                refused.append(response)
            return response

        headers = {
            "Authorization": f"Bearer {self.credential('access_token')}",
            "Square-Version": SQUARE_VERSION,
            "Accept": "application/json",
        }
        url = self.base_url + path
        try:
            data = self.client.json(method, url, json=body, headers=headers, retry=retry, hooks={"response": keep})
        except BadResponse:
            if answers and refused:
                try:
                    said = refused[-1].json()
                except ValueError:
                    said = None
                if is_answer(said):
                    return said
            raise
        if not isinstance(data, dict):
            raise BadResponse(f"Square answered {method} {path} with something other than an object.")
        return data

    def _payment_at(self, path: str) -> dict[str, Any]:
        return self._payment_in(self._call("GET", path))

    @staticmethod
    def _payment_in(data: dict[str, Any]) -> dict[str, Any]:
        payment = data.get("payment")
        if not isinstance(payment, dict) or not payment.get("id") or not isinstance(payment.get("amount_money"), dict):
            raise BadResponse("Square answered without the payment.")
        return payment
