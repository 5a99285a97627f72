"""The one small interface every payment gateway implements.

A gateway is built from a `Connection` (its encrypted credentials) and offers:

- `charge(ChargeRequest) -> GatewayPayment`: take a payment, or only authorise it (`capture=False`).
- `capture(gateway_id, amount, idempotency_key) -> GatewayPayment`: capture an authorised payment,
  fully (`amount=None`) or in part.
- `refund(RefundRequest) -> GatewayRefund`: refund in full or in part.
- `retrieve(gateway_id) -> GatewayPayment`: the payment as the gateway has it now.
- `check() -> CheckResult`: the admin's Test connection (credentials valid, test or live mode).

Rules every gateway keeps:
- Every create, capture and refund sends the request's `idempotency_key` (derived from the hub's
  own payment or refund id) the way the gateway takes one (Stripe's Idempotency-Key header,
  PayPal-Request-Id, Square's idempotency_key field, Authorize.Net's refId plus its duplicate
  window), so a retry after a timeout never charges or refunds twice.
- Card data never reaches the hub: only payment method ids and tokens. Nothing card-like is logged.
- A declined card or a payment that needs the customer (3-D Secure) is an answer, not an error:
  `status` failed (with `failure_code`, `failure_message`) or requires_action (with `client_secret`
  or `approval_url`). Errors (`integrations.errors`) are for the gateway refusing the request
  itself: AuthError (credentials), BadResponse (a request it calls invalid, with its message;
  Stripe answers 402 for a card error and Prism 422 where Stripe answers 400: map both), RateLimited
  and Unavailable (retryable: 429, 5xx, timeouts).
- Amounts are `Decimal` with a currency; `payments.money` converts them to the gateway's form.
- Requests go through `integrations.http.HttpClient` (or the vendor's package configured to), so
  they get the same timeouts, retries and SSRF guard as every connector; `base_url` on the
  connection points a gateway at a fake or a Prism mock in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from integrations.connectors.base import CheckResult
    from integrations.http import HttpClient
    from integrations.models import Connection


class PaymentStatus(models.TextChoices):
    REQUIRES_ACTION = "requires_action", "Requires action"
    PROCESSING = "processing", "Processing"
    AUTHORIZED = "authorized", "Authorised (not captured)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Cancelled"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    amount: Decimal
    currency: str  # ISO 4217, upper case
    capture: bool = True  # False: authorise only
    payment_method: str = ""  # a gateway token / payment method id, never card data
    customer: str = ""  # the gateway's customer id, or an email where the gateway takes one
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    return_url: str = ""  # where PayPal's approval (or a 3-D Secure page) sends the customer back
    cancel_url: str = ""


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str
    gateway_payment_id: str  # what `charge` returned as gateway_id
    amount: Decimal
    currency: str
    reason: str = ""
    # Some gateways refund a capture rather than the payment (PayPal) or need the card's last
    # digits from the original transaction (Authorize.Net): what `charge`/`retrieve` put in `extra`.
    payment_extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GatewayPayment:
    status: str  # a PaymentStatus value
    gateway_id: str
    amount: Decimal | None = None
    currency: str = ""
    amount_captured: Decimal | None = None
    amount_refunded: Decimal | None = None
    client_secret: str = ""  # Stripe: for the customer's browser to finish a requires_action payment
    approval_url: str = ""  # PayPal: where the customer approves the order
    failure_code: str = ""
    failure_message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # gateway ids the hub must keep (capture id, ...)
    raw: dict[str, Any] = field(default_factory=dict)  # the gateway's answer, card data stripped


@dataclass
class GatewayRefund:
    status: str  # a RefundStatus value
    gateway_id: str
    amount: Decimal | None = None
    failure_code: str = ""
    failure_message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class Gateway:
    """Base for one gateway. Subclasses set `platform` and implement the five operations."""

    platform: str = ""

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        from integrations.http import HttpClient, RateBudget

        self.connection = connection
        self.credentials = connection.credentials or {}
        if client is None:
            spec = connection.spec
            cache_id = str(connection.pk) if connection.pk else f"unsaved-{connection.uuid}"
            budget = RateBudget(f"connection:{cache_id}", spec.rate_limit, spec.rate_burst)
            from django.conf import settings

            client = HttpClient(budget=budget, allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        self.client = client

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        raise NotImplementedError

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        raise NotImplementedError

    def refund(self, request: RefundRequest) -> GatewayRefund:
        raise NotImplementedError

    def retrieve(self, gateway_id: str) -> GatewayPayment:
        raise NotImplementedError

    def check(self) -> CheckResult:
        raise NotImplementedError

    def credential(self, name: str) -> str:
        from integrations.errors import ConfigurationError

        value = str(self.credentials.get(name) or "").strip()
        if not value:
            label = next((c.label for c in self.connection.spec.credentials if c.name == name), name)
            raise ConfigurationError(f"The “{label}” credential is missing.", hint="Fill it in on the connection.")
        return value
