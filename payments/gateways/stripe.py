"""Stripe, through the official `stripe` package and PaymentIntents.

- `StripeClient` with the connection's secret key, pointed at `base_url` when the connection has
  one (a Prism mock in the contract tests), sending through our `HttpClient` (`stripe_http`).
- Every create, capture and refund carries the hub's idempotency key as Stripe's Idempotency-Key
  header; a POST that timed out is retried by the package with that same key, and Stripe answers
  the retry with the first attempt's result.
- A card declined (Stripe's 402) is an answer: a failed payment with the decline code. Stripe
  refusing the request itself is an error from `integrations.errors` (`stripe_error`).
- Mapping between Stripe's objects and the hub's lives in `stripe_mapping`.

The package logs request and response bodies (payment method ids, client secrets) at DEBUG on its
`stripe` logger: those records are dropped here, whatever level logging is configured to, and its
other records are scrubbed like our error messages (`scrub`).
"""

from __future__ import annotations

import logging
import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe

from integrations.connectors.base import CheckResult
from integrations.errors import (
    AuthError,
    BadResponse,
    ConfigurationError,
    IntegrationError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from integrations.http import Hints
from payments.money import to_minor

from . import stripe_mapping as mapping
from .base import ChargeRequest, Gateway, GatewayPayment, GatewayRefund, RefundRequest
from .stripe_http import StripeHttp

if TYPE_CHECKING:
    from integrations.http import HttpClient
    from integrations.models import Connection

# Stripe's recommendation; each retry of a POST carries the same Idempotency-Key.
MAX_NETWORK_RETRIES = 2
KEY_MODES = {"sk_test_": "test", "sk_live_": "live", "rk_test_": "test", "rk_live_": "live"}
HINT_AUTH = "Check the secret key in the Stripe Dashboard (Developers → API keys): it may have been rolled or revoked."
HINT_PERMISSION = "The restricted key lacks a permission: it needs write access to PaymentIntents and Refunds."
HINT_RATE = "Stripe is limiting this account's requests; try again shortly."
HINT_IDEMPOTENCY = "Stripe saw this idempotency key with other parameters: the hub's payment or refund changed."
HINT_IN_FLIGHT = "A request with the same idempotency key is still being processed by Stripe; try again shortly."
# Quoted in Stripe's messages ("No such PaymentMethod: 'pm_…'", "Invalid API Key provided: …"):
# a key is cut to its last four characters, a client secret and a payment method id to nothing.
KEYS = re.compile(r"\b((?:sk|rk|pk)_(?:test|live)_)[A-Za-z0-9]*([A-Za-z0-9]{4})\b")
HIDDEN = re.compile(r"(_secret_)[A-Za-z0-9]+|\b(pm_|src_|tok_)[A-Za-z0-9_]+|\b(card_)[A-Za-z0-9]{14,}")


def scrub(text: str) -> str:
    text = KEYS.sub(lambda m: f"{m[1]}…{m[2]}", text)
    return HIDDEN.sub(lambda m: f"{m[1] or m[2] or m[3]}…", text)


class _ScrubStripeLogs(logging.Filter):
    """Drops the package's DEBUG records (request and response bodies) and scrubs the others
    (its INFO record of an API error quotes Stripe's message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return False
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


logging.getLogger("stripe").addFilter(_ScrubStripeLogs())


class StripeGateway(Gateway):
    platform = "stripe"

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        super().__init__(connection, client=client)
        self.client.hints = Hints(
            timeout="Stripe did not answer in time.",
            connection="Stripe could not be reached.",
        )
        self._clients: dict[bool, stripe.StripeClient] = {}

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        params = mapping.charge_params(request)
        try:
            intent = self.api().v1.payment_intents.create(params, {"idempotency_key": request.idempotency_key})
        except stripe.CardError as error:
            return mapping.declined_payment(_error_body(error))
        except stripe.StripeError as error:
            raise stripe_error(error) from error
        return mapping.payment_from_intent(intent.to_dict(for_json=True))

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        intents = self.api().v1.payment_intents
        params: dict[str, Any] = {}
        try:
            if amount is not None:
                # Stripe wants the amount in the intent's minor units, and only the intent knows its currency.
                params["amount_to_capture"] = to_minor(amount, intents.retrieve(gateway_id).currency)
            intent = intents.capture(gateway_id, params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise stripe_error(error) from error
        return mapping.payment_from_intent(intent.to_dict(for_json=True))

    def refund(self, request: RefundRequest) -> GatewayRefund:
        params = mapping.refund_params(request)
        try:
            refund = self.api().v1.refunds.create(params, {"idempotency_key": request.idempotency_key})
        except stripe.StripeError as error:
            raise stripe_error(error) from error
        return mapping.refund_from_stripe(refund.to_dict(for_json=True))

    def retrieve(self, gateway_id: str) -> GatewayPayment:
        try:
            # The latest charge tells refunds and disputes, which the intent itself does not.
            intent = self.api().v1.payment_intents.retrieve(gateway_id, {"expand": ["latest_charge"]})
        except stripe.StripeError as error:
            raise stripe_error(error) from error
        return mapping.payment_from_intent(intent.to_dict(for_json=True))

    def check(self) -> CheckResult:
        """The balance, read once without retries: it needs a valid key and says which mode the key is in."""
        started = time.monotonic()
        try:
            try:
                balance = self.api(retry=False).v1.balance.retrieve()
            except stripe.StripeError as error:
                raise stripe_error(error) from error
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=_since(started))
        key = self.credential("secret_key")
        mode = "live" if balance.livemode else "test"
        restricted = key.startswith("rk_")
        warnings = []
        if restricted:
            warnings.append("A restricted key needs write access to PaymentIntents and Refunds (not checked here).")
        if KEY_MODES.get(key[:8], mode) != mode:
            warnings.append(f"The key looks like a {KEY_MODES[key[:8]]} key but Stripe answered in {mode} mode.")
        return CheckResult(
            ok=True,
            message=f"Connected to Stripe in {mode} mode.",
            warnings=warnings,
            latency_ms=_since(started),
            details={"mode": mode, "key": "restricted" if restricted else "secret"},
        )

    def api(self, *, retry: bool = True) -> stripe.StripeClient:
        if retry not in self._clients:
            key = self.credential("secret_key")
            if key.startswith("pk_"):
                raise ConfigurationError(
                    "This is a publishable key; the hub needs the secret key.",
                    hint="Use the secret key (sk_…) or a restricted key (rk_…) from Developers → API keys.",
                )
            base_url = (self.connection.base_url or "").strip().rstrip("/")
            self._clients[retry] = stripe.StripeClient(
                key,
                base_addresses={"api": base_url} if base_url else None,
                max_network_retries=MAX_NETWORK_RETRIES if retry else 0,
                http_client=StripeHttp(self.client, retry_reads=retry),
            )
        return self._clients[retry]


def stripe_error(error: stripe.StripeError) -> IntegrationError:
    """Stripe refusing a request, as the hub's error for it, with Stripe's own message."""
    if isinstance(error, stripe.APIConnectionError) and isinstance(error.__cause__, IntegrationError):
        return error.__cause__  # HttpClient's, with its hint
    status = error.http_status
    message = scrub(error.user_message or "")
    if isinstance(error, stripe.AuthenticationError):
        return AuthError(f"Stripe refused the key: {message}", hint=HINT_AUTH, status=status)
    if isinstance(error, stripe.PermissionError):
        return PermissionDenied(f"Stripe refused the request: {message}", hint=HINT_PERMISSION, status=status)
    if isinstance(error, stripe.RateLimitError):
        return RateLimited(f"Stripe is limiting requests: {message}", hint=HINT_RATE, status=status)
    if isinstance(error, stripe.IdempotencyError):
        return BadResponse(f"Stripe refused the request: {message}", hint=HINT_IDEMPOTENCY, status=status)
    if isinstance(error, stripe.InvalidRequestError) and status == 404:
        return NotFound(f"Stripe has no such object: {message}", status=status)
    if isinstance(error, stripe.InvalidRequestError | stripe.CardError):
        param = getattr(error, "param", None)
        return BadResponse(f"Stripe refused the request{f' ({param})' if param else ''}: {message}", status=status)
    if status == 409:  # the first attempt with this key still running at Stripe, after the package's retries
        return Unavailable(f"Stripe is still processing this request: {message}", hint=HINT_IN_FLIGHT, status=status)
    if isinstance(error, stripe.APIConnectionError) or status is None or status >= 500:
        return Unavailable(
            f"Stripe failed to answer: {message}" if message else "Stripe failed to answer.", status=status
        )
    # Prism answers 422 where Stripe answers 400; any other status Stripe does not document.
    return BadResponse(f"Stripe refused the request ({status}): {message}", status=status)


def _error_body(error: stripe.StripeError) -> dict[str, Any]:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    return body.get("error") if isinstance(body.get("error"), dict) else {}


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
